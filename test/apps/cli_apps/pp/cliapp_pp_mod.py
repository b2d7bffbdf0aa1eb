"""Importable only when --pythonpath names this directory (test/cli.test.ts)."""
import sys


def application(environ, start_response):
    body = ("from --pythonpath; sys.path[0:3]=%r\n" % (sys.path[0:3],)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
