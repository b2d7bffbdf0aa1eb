"""Benchmark app: a raw ASGI 3 hello world (no framework), with its Content-Length."""

BODY = b"Hello, World!"
START = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]}
RESPONSE = {"type": "http.response.body", "body": BODY}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return  # lifespan: not supported, which every server copes with
    await send(START)
    await send(RESPONSE)
