"""WSGI (PEP 3333) conformance cases for test/wsgi-*.test.ts. Standard library only.

`wsgi_cases.py:dispatch` picks a case by the first segment of PATH_INFO
(`/environ/...`, `/input?op=read`, ...); every case is also a callable of its
own. Cases that must prove `close()` was called append lines to the file named
by the `log` query parameter.
"""
import hashlib
import io
import json
import os
import sys
import time
from urllib.parse import parse_qs


def _query(environ):
    parsed = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


def _note(path, text):
    if path:
        with open(path, "a") as f:
            f.write(text + "\n")


def _json(start_response, data, status="200 OK"):
    body = json.dumps(data).encode("ascii")
    start_response(status, [("Content-Type", "application/json")])
    return [body]


def pattern(size):
    """Deterministic bytes with no short period (the test computes the same)."""
    out = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(size // 32 + 1))
    return out[:size]


# ---- environ ----------------------------------------------------------------


def environ_case(environ, start_response):
    body = environ["wsgi.input"].read()
    data = {k: v for k, v in environ.items() if type(v) is str}
    data["body"] = body.decode("latin-1")
    data["_keys"] = sorted(environ)
    data["_non_str_keys"] = [repr(k) for k in environ if type(k) is not str]
    # CGI variables (no dot in the name) must all be native strings.
    data["_non_str_cgi"] = [k for k, v in environ.items() if "." not in k and type(v) is not str]
    version = environ.get("wsgi.version")
    data["_version"] = {"type": type(version).__name__, "value": list(version) if isinstance(version, tuple) else repr(version)}
    for key in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once", "wsgi.input_terminated"):
        value = environ.get(key, "MISSING")
        data["_" + key] = {"type": type(value).__name__, "value": value if type(value) is bool else repr(value)}
    inp = environ.get("wsgi.input")
    err = environ.get("wsgi.errors")
    data["_input_methods"] = [m for m in ("read", "readline", "readlines", "__iter__") if callable(getattr(inp, m, None))]
    data["_errors_methods"] = [m for m in ("write", "writelines", "flush") if callable(getattr(err, m, None))]
    data["_file_wrapper"] = callable(environ.get("wsgi.file_wrapper"))
    return _json(start_response, data)


# ---- wsgi.input ---------------------------------------------------------------


def input_case(environ, start_response):
    q = _query(environ)
    op = q["op"]
    n = int(q.get("n") or "0")
    inp = environ["wsgi.input"]
    name = getattr(inp, "name", None)
    name = name if isinstance(name, str) else None
    pieces = []
    if op == "read":
        pieces.append(inp.read())
    elif op == "readn":
        while True:
            chunk = inp.read(n)
            if not chunk:
                break
            pieces.append(chunk)
    elif op == "readline":
        while True:
            line = inp.readline()
            if not line:
                break
            pieces.append(line)
    elif op == "readline_n":
        while True:
            line = inp.readline(n)
            if not line:
                break
            pieces.append(line)
    elif op == "readlines":
        pieces = inp.readlines()
    elif op == "iter":
        pieces = [line for line in inp]
    elif op == "mixed":
        pieces = [inp.read(10), inp.readline(), inp.readline(5), inp.read(100), inp.read(0), inp.readline(), inp.read()]
    else:
        raise ValueError("unknown op %r" % op)
    after_eof = [len(inp.read()), len(inp.read(5)), len(inp.readline())]
    data = {
        "pieces": [len(p) for p in pieces],
        "all_bytes": all(type(p) is bytes for p in pieces),
        "sha256": hashlib.sha256(b"".join(pieces)).hexdigest(),
        "after_eof": after_eof,
        "content_length": environ.get("CONTENT_LENGTH"),
        "input_name": name,
        "input_file_exists": bool(name) and os.path.exists(name),
        "input_terminated": environ.get("wsgi.input_terminated"),
    }
    if q.get("fail"):
        raise RuntimeError("failing on purpose after reading the body")
    return _json(start_response, data)


# ---- wsgi.errors --------------------------------------------------------------


def errors_case(environ, start_response):
    token = _query(environ)["token"]
    errors = environ["wsgi.errors"]
    errors.write("wsgi.errors write %s\n" % token)
    errors.writelines(["wsgi.errors writelines %s\n" % token])
    errors.flush()
    return _json(start_response, {"pid": os.getpid()})


# ---- write() ----------------------------------------------------------------


def write_case(environ, start_response):
    mode = _query(environ).get("mode", "alone")
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"one,")
    write(b"two,")
    if mode == "gen":

        def rest():
            yield b"three,"
            yield b"four"

        return rest()
    if mode == "list":
        return [b"three,four"]
    return []


# ---- start_response(..., exc_info) ---------------------------------------------


def excinfo_before(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "1")])
    try:
        raise ValueError("changed my mind")
    except ValueError:
        start_response("503 Service Unavailable", [("Content-Type", "text/plain"), ("X-Second", "2")], sys.exc_info())
    return [b"replacement body"]


def excinfo_after(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        yield b"partial-"
        time.sleep(0.05)
        try:
            raise ValueError("late failure")
        except ValueError:
            # Headers are out: PEP 3333 says this call must re-raise.
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
        yield b"MUST-NOT-BE-SENT"

    return body()


# ---- close() ------------------------------------------------------------------


class Tracked:
    """A response iterable that records iteration and close() in a log file."""

    def __init__(self, log, chunks=(), fail_after=None, infinite=False, delay=0.0, size=0):
        self.log = log
        self.chunks = list(chunks)
        self.fail_after = fail_after
        self.infinite = infinite
        self.delay = delay
        self.size = size
        _note(log, "created")

    def __iter__(self):
        i = 0
        block = b"x" * self.size if self.size else b""
        while True:
            if self.fail_after is not None and i == self.fail_after:
                raise RuntimeError("failing on purpose mid-iteration")
            if self.infinite:
                yield block or (b"tick %d\n" % i)
                if self.delay:
                    time.sleep(self.delay)
            elif i < len(self.chunks):
                yield self.chunks[i]
            else:
                return
            i += 1

    def close(self):
        _note(self.log, "close")


def close_case(environ, start_response):
    q = _query(environ)
    log = q["log"]
    mode = q.get("mode", "normal")
    start_response("200 OK", [("Content-Type", "text/plain")])
    if mode == "normal":
        return Tracked(log, [b"alpha,", b"beta"])
    if mode == "raise":
        return Tracked(log, [b"alpha,", b"beta"], fail_after=1)
    if mode == "stream":
        return Tracked(log, infinite=True, delay=float(q.get("delay") or 0), size=int(q.get("size") or 0))
    raise ValueError("unknown mode %r" % mode)


# ---- wsgi.file_wrapper ----------------------------------------------------------


def file_case(environ, start_response):
    q = _query(environ)
    f = open(q["path"], "rb")
    if q.get("offset"):
        f.seek(int(q["offset"]))
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](f, 65536)


def bytesio_case(environ, start_response):
    size = int(_query(environ)["size"])
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](io.BytesIO(pattern(size)), 8192)


# ---- framing --------------------------------------------------------------------


def one_case(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello, world"]


def gen_case(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        yield b"ab"
        yield b""  # an empty chunk must not end a chunked body early
        yield b"cd"
        yield b"ef"

    return body()


def status_case(environ, start_response):
    q = _query(environ)
    code = q["code"]
    mode = q.get("mode", "list")
    reason = {"204": "No Content", "304": "Not Modified"}.get(code, "OK")
    # reason=none: the code alone, as some hand-written apps give it
    status = code if q.get("reason") == "none" else "%s %s" % (code, reason)
    headers = [("Content-Type", "text/plain"), ("ETag", '"v1"')]
    if "length" in q:  # the app declares a length of its own
        headers.append(("Content-Length", q["length"]))
    start_response(status, headers)
    if mode == "body":
        return iter([b"streamed ", b"body"])
    if mode == "empty":
        return []
    if mode == "gen":
        return iter([b"SHOULD-NOT-", b"BE-SENT"])
    return [b"SHOULD-NOT-BE-SENT"]


# ---- broken responses ------------------------------------------------------------

BAD_HEADS = {
    "non-latin1-value": ("200 OK", [("X-Snow", "snow \u2603")]),
    "int-value": ("200 OK", [("X-Number", 5)]),
    "bytes-name": ("200 OK", [(b"X-Bytes-Name", "v")]),
    "crlf-value": ("200 OK", [("X-Split", "a\r\nSet-Cookie: injected=1")]),
    "space-in-name": ("200 OK", [("X Bad Name", "v")]),
    "int-status": (299, []),
    "text-status": ("TWO-HUNDRED", []),
    "long-code-status": ("2000 Way OK", []),
    "out-of-range-status": ("600 Beyond", []),
    "tuple-headers": ("200 OK", (("X-Tuple", "v"),)),
    "two-content-lengths": ("200 OK", [("Content-Length", "18"), ("Content-Length", "19")]),
}


def big_case(environ, start_response):
    """?size=N: pattern(N) in 64 KiB pieces, for a client that reads slowly."""
    data = pattern(int(_query(environ)["size"]))
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return (data[i : i + 65536] for i in range(0, len(data), 65536))


# Hop-by-hop headers, as SSE examples and old apps send them (gunicorn drops them).
HOP_HEADERS = [
    ("Content-Type", "text/plain"),
    ("Connection", "keep-alive"),
    ("Keep-Alive", "timeout=99"),
    ("Transfer-Encoding", "chunked"),
    ("Upgrade", "websocket"),
]


def hop_case(environ, start_response):
    if _query(environ).get("close"):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Connection", "close")])
    else:
        start_response("200 OK", HOP_HEADERS)
    return [b"hop body"]


# One list for every response, as small hand-written apps keep their headers: the
# server must add its Content-Length to a copy, never to this list.
SHARED_HEADERS = [("Content-Type", "text/plain")]


def shared_case(environ, start_response):
    start_response("200 OK", SHARED_HEADERS)
    body = _query(environ).get("body", "").encode()
    return [body] if body else []


def bad_case(environ, start_response):
    status, headers = BAD_HEADS[_query(environ)["kind"]]
    start_response(status, headers)
    return [b"SHOULD-NOT-BE-SENT"]


def raise_case(environ, start_response):
    where = _query(environ)["where"]
    if where == "before-start":
        raise RuntimeError("raised before start_response")
    start_response("200 OK", [("Content-Type", "text/plain")])
    if where == "after-start":
        raise RuntimeError("raised after start_response, before any body")

    def body():
        if where == "first-chunk":
            raise RuntimeError("raised before the first body chunk")
        yield b"partial-body"
        time.sleep(0.05)
        raise RuntimeError("raised after the headers went out")

    return body()


def content_length_case(environ, start_response):
    q = _query(environ)
    declared = q["declared"]
    data = q["send"].encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", declared)])
    if q.get("mode") == "gen":

        def body():
            # Pauses let each chunk reach the client before the server can react.
            yield data[: len(data) // 2]
            time.sleep(0.05)
            yield data[len(data) // 2 :]
            time.sleep(0.05)

        return body()
    return [data]


CASES = {
    "environ": environ_case,
    "input": input_case,
    "errors": errors_case,
    "write": write_case,
    "excinfo-before": excinfo_before,
    "excinfo-after": excinfo_after,
    "close": close_case,
    "file": file_case,
    "bytesio": bytesio_case,
    "one": one_case,
    "gen": gen_case,
    "status": status_case,
    "bad": bad_case,
    "raise": raise_case,
    "content-length": content_length_case,
    "shared": shared_case,
    "hop": hop_case,
    "big": big_case,
}


def dispatch(environ, start_response):
    name = environ["PATH_INFO"].lstrip("/").split("/", 1)[0]
    case = CASES.get(name)
    if case is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no such case\n"]
    return case(environ, start_response)
