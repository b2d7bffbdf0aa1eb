"""A WSGI app for test/worker-imports.test.ts: which modules its worker loaded
that a WSGI worker need not (asyncio and what it pulls in)."""

import json
import sys

ASYNC_ONLY = ("asyncio", "ssl", "subprocess", "concurrent.futures")


def app(environ, start_response):
    body = json.dumps(sorted(m for m in ASYNC_ONLY if m in sys.modules)).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
