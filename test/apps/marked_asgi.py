"""An ASGI app that is not a coroutine function but is marked as one with
asyncio's own marker, as asgiref's markcoroutinefunction did before Python
3.12: only asyncio.iscoroutinefunction knows it (test/worker-imports.test.ts)."""

import asyncio.coroutines
import json


async def _serve(scope, receive, send):
    assert scope["type"] == "http"
    body = json.dumps({"interface": "asgi"}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def app(scope, receive, send):
    return _serve(scope, receive, send)


app._is_coroutine = asyncio.coroutines._is_coroutine
