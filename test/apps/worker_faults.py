"""Apps that make the worker's own plumbing fail, for test/worker-faults.test.ts:
the request concerned may fail, the worker must not. Standard library only."""
import glob
import os
import sys
import tempfile
import time


def _text(start_response, body, status="200 OK"):
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    path = environ["PATH_INFO"]
    pid = os.getpid()
    if path == "/hello":
        return _text(start_response, b"hello from %d" % pid)
    if path == "/close-fd":
        # Closes the descriptor under wsgi.input (a spilled body's temp file), so the
        # worker's own close() of that file fails after the response.
        os.close(environ["wsgi.input"].fileno())
        return _text(start_response, b"closed from %d" % pid)
    if path == "/sweep":
        # Waits, then removes the request bodies the front spilled meanwhile, as the front
        # does when a client goes away before its request runs.
        time.sleep(float(environ["QUERY_STRING"] or "0.5"))
        swept = glob.glob(os.path.join(os.environ.get("TMPDIR") or tempfile.gettempdir(), "gatehouse-body-*"))
        for name in swept:
            os.unlink(name)
        return _text(start_response, b"swept %d" % len(swept))
    if path == "/exit":
        # An app that ends its own process mid-request (sys.exit(0) in a view): counted in a
        # file, so the test sees how often the request ran.
        with open(environ["QUERY_STRING"], "a") as f:
            f.write("ran\n")
        sys.exit(0)
    if path == "/echo":
        return _text(start_response, b"%d bytes to %d" % (len(environ["wsgi.input"].read()), pid))
    return _text(start_response, b"not found", "404 Not Found")
