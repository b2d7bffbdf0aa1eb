"""WSGI apps for test/lifecycle.test.ts (stdlib only).

Routes of `app`:
  /crash?after=S   sleep S seconds (default 0), then kill this worker with os._exit(1)
  /sleep?s=S       sleep S seconds, then answer "slept S <pid>"
  /hang            sleep for an hour (to be killed by --timeout)
  anything else    "pid <pid>"
"""
import os
import time
from urllib.parse import parse_qs


def app(environ, start_response):
    path = environ["PATH_INFO"]
    query = parse_qs(environ["QUERY_STRING"])
    if path == "/crash":
        time.sleep(float(query.get("after", ["0"])[0]))
        os._exit(1)
    if path == "/sleep":
        seconds = float(query.get("s", ["1"])[0])
        time.sleep(seconds)
        body = ("slept %s %d\n" % (query.get("s", ["1"])[0], os.getpid())).encode()
    elif path == "/hang":
        time.sleep(3600)
        body = b"woke up\n"
    else:
        body = ("pid %d\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def big(environ, start_response):
    """Streams ?kib=N KiB (default 1024) in 16 KiB chunks, with a Content-Length."""
    query = parse_qs(environ["QUERY_STRING"])
    kib = int(query.get("kib", ["1024"])[0])
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(kib * 1024))])
    chunk = b"x" * 16384
    for _ in range(kib // 16):
        yield chunk
    if kib % 16:
        yield b"x" * ((kib % 16) * 1024)
