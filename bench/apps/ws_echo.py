"""Benchmark app: a raw ASGI 3 WebSocket echo (text and bytes), and a hello world on HTTP for the readiness check and the warm-up."""

HELLO_START = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]}
HELLO_BODY = {"type": "http.response.body", "body": b"Hello, World!"}


async def app(scope, receive, send):
    kind = scope["type"]
    if kind == "http":
        await send(HELLO_START)
        await send(HELLO_BODY)
    elif kind == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
