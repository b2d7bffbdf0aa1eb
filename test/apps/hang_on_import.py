"""Hangs at import while the file named by $HANG_MARKER exists (a module that waits on a
database or a lock at import time); answers with its pid otherwise. For test/boot-timeout.test.ts."""
import os
import time

while os.path.exists(os.environ["HANG_MARKER"]):
    time.sleep(0.1)


def application(environ, start_response):
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
