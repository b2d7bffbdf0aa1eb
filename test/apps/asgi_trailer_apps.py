"""ASGI apps for test/asgi-trailers.test.ts: the http.response.trailers extension."""

import hashlib

PARTS = [b"first part, ", b"second part, " * 200, b"last part\n"]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return
    offered = "http.response.trailers" in scope["extensions"]
    headers = [(b"content-type", b"text/plain")]
    if not offered:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"no trailers offered\n"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": headers + [(b"trailer", b"x-checksum")], "trailers": True})
    digest = hashlib.sha256()
    for i, part in enumerate(PARTS):
        digest.update(part)
        await send({"type": "http.response.body", "body": part, "more_body": i < len(PARTS) - 1})
    await send({"type": "http.response.trailers", "headers": [(b"x-checksum", digest.hexdigest().encode())], "more_trailers": True})
    await send({"type": "http.response.trailers", "headers": [(b"x-parts", str(len(PARTS)).encode())]})
