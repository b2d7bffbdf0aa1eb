"""Responses for test/compression.test.ts; `compress_apps.py:app` picks one by PATH_INFO.

Bodies are deterministic, so a request without Accept-Encoding gives the
exact bytes a compressed response must decompress to.
"""
import functools
import gzip
import hashlib
import json
import os
import time
from urllib.parse import parse_qs


def _query(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


@functools.lru_cache(maxsize=16)
def json_body(size):
    """Valid JSON of exactly `size` bytes (at least 2): a list of objects, padded with spaces."""
    parts = []
    length = 2
    while True:
        part = json.dumps({"id": len(parts), "name": "item %d" % len(parts), "tags": ["alpha", "beta"]})
        extra = len(part) + (2 if parts else 0)
        if length + extra > size:
            break
        parts.append(part)
        length += extra
    return ("[" + ", ".join(parts) + "]").encode().ljust(size)


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
    if path == "/noise":
        # `mib` MiB that do not compress (SHA-256 digests of 0, 1, 2...), streamed in 64 KiB chunks, as text.
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _noise(int(q["mib"]))
    if path == "/wait":
        # The first part, then nothing until the test creates the file named by `until` (at most 10 s).
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _wait(q["until"])
    if path == "/file":
        # The file named by `path`, through wsgi.file_wrapper: a FILE frame the front streams.
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](open(q["path"], "rb"))
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such case\n"]


def _noise(mib):
    for block in range(mib * 16):
        yield b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(block * 2048, (block + 1) * 2048))


def _wait(until):
    yield b"first part " * 200
    deadline = time.time() + 10
    while not os.path.exists(until) and time.time() < deadline:
        time.sleep(0.02)
    yield b"second part " * 200
