"""Apps wrapped in wsgiref.validate.validator, the standard library's PEP 3333
checker, for test/validator.test.ts. The validator asserts on what the server
hands the app (environ, wsgi.input, wsgi.errors, start_response, write) and on
what the server does with what the app returns (iterated only after
start_response, closed exactly once, wsgi.input never closed by the server).
Standard library only.
"""
import hashlib
import os
from wsgiref.validate import validator


def _text(start_response, body, status="200 OK"):
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _inner(environ, start_response):
    path = environ["PATH_INFO"]
    pid = os.getpid()
    if path == "/hello":
        return _text(start_response, b"hello from %d" % pid)
    if path == "/echo":
        # read(n) until EOF: wsgi.input_terminated says EOF ends the body.
        inp = environ["wsgi.input"]
        digest = hashlib.sha256()
        size = 0
        while True:
            chunk = inp.read(65536)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
        return _text(start_response, b"%d %s %d" % (size, digest.hexdigest().encode(), pid))
    if path == "/lines":
        lines = [line for line in environ["wsgi.input"]]
        return _text(start_response, b"%d lines, last %r %d" % (len(lines), lines[-1] if lines else b"", pid))
    if path == "/stream":
        # No Content-Length: the front chunks it; each piece is a BODY frame.
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body():
            for i in range(5):
                yield b"piece %d\n" % i
            yield b"from %d" % pid

        return body()
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written,")
        return [b"returned from %d" % pid]
    if path == "/errors":
        environ["wsgi.errors"].write("validated app writes to wsgi.errors\n")
        environ["wsgi.errors"].flush()
        return _text(start_response, b"logged from %d" % pid)
    if path == "/file":
        f = open(__file__, "rb")
        start_response("200 OK", [("Content-Type", "text/x-python")])
        return environ["wsgi.file_wrapper"](f, 4096)
    if path == "/empty":
        start_response("204 No Content", [])
        return []
    return _text(start_response, b"not found", "404 Not Found")


app = validator(_inner)

