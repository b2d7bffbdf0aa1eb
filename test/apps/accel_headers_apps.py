"""Apps answering with nginx's X-Accel-* headers, for test/accel-headers.test.ts.

`/all` answers with every X-Accel-* header but X-Accel-Redirect (none may reach
the client), `/stream` the same streamed; `/big?n=N&progress=FILE[&buffering=no]`
streams N chunks of 256 KiB (chunk i is all byte i % 256), writing how many it
has handed over to FILE before each; `/cached?cc=...&expires=...` answers its
call count with that Cache-Control and X-Accel-Expires.
"""

from urllib.parse import parse_qs

CHUNK = 256 * 1024
CALLS = {}

ACCEL = [
    ("X-Accel-Expires", "30"),
    ("x-accel-limit-rate", "1024"),
    ("X-ACCEL-BUFFERING", "yes"),
    ("X-Accel-Charset", "utf-8"),
    ("X-Accelerated", "kept"),
]


def query(environ):
    return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def big(q):
    n = int(q["n"])
    with open(q["progress"], "w") as f:
        for i in range(n):
            f.seek(0)
            f.write("%08d" % (i + 1))
            f.flush()
            yield bytes([i % 256]) * CHUNK


def big_headers(q):
    headers = [("Content-Type", "application/octet-stream")]
    if "buffering" in q:
        headers.append(("X-Accel-Buffering", q["buffering"]))
    return headers


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    name = "/" + path.rsplit("/", 1)[-1]
    q = query(environ)
    if name == "/all":
        body = b"all hidden"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))] + ACCEL)
        return [body]
    if name == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")] + ACCEL)
        return (part for part in [b"streamed ", b"body"])
    if name == "/big":
        start_response("200 OK", big_headers(q))
        return big(q)
    if name == "/cached":
        key = environ.get("QUERY_STRING", "")
        CALLS[key] = CALLS.get(key, 0) + 1
        body = b"call %d" % CALLS[key]
        headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body))), ("Cache-Control", q["cc"])]
        start_response("200 OK", headers + [("X-Accel-Expires", q["expires"])])
        return [body]
    start_response("404 Not Found", [("Content-Length", "0")])
    return [b""]


async def asgi_app(scope, receive, send):
    if scope["type"] == "lifespan":
        return  # no lifespan: the server goes on without it
    q = {k: v[0] for k, v in parse_qs(scope["query_string"].decode("latin-1")).items()}
    name = "/" + scope["path"].rsplit("/", 1)[-1]
    if name == "/big":
        headers = [(n.lower().encode(), v.encode()) for n, v in big_headers(q)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for chunk in big(q):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    headers = [(b"content-type", b"text/plain")] + [(n.encode(), v.encode()) for n, v in ACCEL]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"asgi ", "more_body": True})
    await send({"type": "http.response.body", "body": b"hidden"})
