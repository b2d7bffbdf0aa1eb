"""ASGI apps for test/asgi-upload.test.ts: request bodies streamed to the app as they arrive."""

import asyncio
import hashlib
import json
import time

# What /hold saw last: the messages its receive() gave, in order.
SEEN = []


async def send_json(send, value, status=200):
    body = json.dumps(value).encode()
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def hash_body(receive, send):
    """Hashes the body piece by piece; says how many messages it took and when the first came (ms since the epoch)."""
    digest, length, messages, first_at = hashlib.sha256(), 0, 0, None
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        if first_at is None:
            first_at = time.time() * 1000
        messages += 1
        digest.update(message["body"])
        length += len(message["body"])
        if not message.get("more_body", False):
            break
    await send_json(send, {"sha256": digest.hexdigest(), "length": length, "messages": messages, "first_at": first_at})


async def never_read(receive, send):
    """Answers after a while without reading the body."""
    await asyncio.sleep(1.5)
    await send_json(send, {"read": False})


async def hold(receive, send):
    """Reads until the body ends or the client goes away, and remembers what it saw."""
    SEEN.clear()
    while True:
        message = await receive()
        SEEN.append(message["type"])
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            break
    await send_json(send, {"seen": SEEN})


async def answer_first(receive, send):
    """Starts its response, then reads the body."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"started\n", "more_body": True})
    while True:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            break
    await send({"type": "http.response.body", "body": b"done\n"})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return
    path = scope["path"]
    if path.endswith("/hash"):
        await hash_body(receive, send)
    elif path.endswith("/never"):
        await never_read(receive, send)
    elif path.endswith("/hold"):
        await hold(receive, send)
    elif path.endswith("/early"):
        await answer_first(receive, send)
    elif path.endswith("/seen"):
        await send_json(send, {"seen": SEEN})
    else:
        await send_json(send, {"fast": True})


def framework_app():
    """Starlette: request.body() and request.stream()."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def whole(request):
        body = await request.body()
        return JSONResponse({"sha256": hashlib.sha256(body).hexdigest(), "length": len(body)})

    async def stream(request):
        digest, length, pieces = hashlib.sha256(), 0, 0
        async for piece in request.stream():
            digest.update(piece)
            length += len(piece)
            pieces += 1
        return JSONResponse({"sha256": digest.hexdigest(), "length": length, "pieces": pieces})

    # Starlette before 0.33 matches the whole path, later ones the path below root_path.
    paths = [("/whole", whole), ("/stream", stream)]
    routes = [Route(prefix + path, fn, methods=["POST"]) for prefix in ("", "/star") for path, fn in paths]
    return Starlette(routes=routes)


try:
    starlette_app = framework_app()
except ImportError:
    starlette_app = None
