"""Responses for test/compression.test.ts; `compress_apps.py:app` picks one by PATH_INFO.

Bodies are deterministic, so a request without Accept-Encoding gives the
exact bytes a compressed response must decompress to.
"""
import gzip
import json
import os
import tempfile
import time
from urllib.parse import parse_qs

# A text file for the FILE frame path (wsgi.file_wrapper), made once per worker.
_FILE = os.path.join(tempfile.mkdtemp(prefix="gh-compress-app-"), "big.txt")
with open(_FILE, "w") as f:
    f.write("".join("line %06d of a text file streamed by the front\n" % i for i in range(4000)))


def _query(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def json_body(size):
    """JSON of about `size` bytes (at least 2)."""
    items = []
    n = 0
    while n < size - 2:
        item = {"id": len(items), "name": "item %d" % len(items), "tags": ["alpha", "beta"]}
        items.append(item)
        n += len(json.dumps(item)) + 2
    return json.dumps(items).encode()[: max(size, 2)] if size < 40 else json.dumps(items).encode()


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    q = _query(environ)
    size = int(q.get("size", "20000"))
    if path == "/json":
        # One frame: a list holding one bytes object.
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json_body(size)]
    if path == "/text":
        body = b"".join(b"%d plain text line, plain text line\n" % i for i in range(size // 36 + 1))[:size]
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
        return [body]
    if path == "/png":
        body = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * (size // 256)
        start_response("200 OK", [("Content-Type", "image/png")])
        return [body]
    if path == "/encoded":
        body = gzip.compress(json_body(size))
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Encoding", "gzip")])
        return [body]
    if path == "/no-transform":
        start_response("200 OK", [("Content-Type", "application/json"), ("Cache-Control", "public, no-transform")])
        return [json_body(size)]
    if path == "/etag":
        # A strong ETag and a Vary of its own.
        start_response("200 OK", [("Content-Type", "application/json"), ("ETag", '"v1"'), ("Vary", "Cookie")])
        return [json_body(size)]
    if path == "/partial":
        body = json_body(size)
        start_response("206 Partial Content", [
            ("Content-Type", "application/json"),
            ("Content-Range", "bytes 0-%d/%d" % (len(body) - 1, len(body) * 2)),
        ])
        return [body]
    if path == "/stream":
        # No Content-Length: START, BODY frames, END.
        n = int(q.get("chunks", "50"))
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return (b"<p>chunk %d of a streamed page, some words to compress</p>\n" % i for i in range(n))
    if path == "/wait":
        # The first part, then nothing until the test creates the file named by `until` (at most 10 s).
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _wait(q["until"])
    if path == "/file":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](open(_FILE, "rb"))
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such case\n"]


def _wait(until):
    yield b"first part " * 200
    deadline = time.time() + 10
    while not os.path.exists(until) and time.time() < deadline:
        time.sleep(0.02)
    yield b"second part " * 200
