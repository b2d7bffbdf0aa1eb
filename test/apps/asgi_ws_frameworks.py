"""A Starlette WebSocketRoute and a FastAPI websocket endpoint (Debian's
python3-starlette, python3-fastapi) for test/asgi-websocket-frameworks.test.ts."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute

async def starlette_echo(websocket):
    await websocket.accept(subprotocol="chat" if "chat" in websocket.scope["subprotocols"] else None)
    name = websocket.query_params.get("name", "?")
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_text("starlette %s: %s" % (name, text))
    except WebSocketDisconnect:
        pass


starlette_app = Starlette(routes=[WebSocketRoute("/echo", starlette_echo)])

fastapi_app = FastAPI()


@fastapi_app.websocket("/items/{item_id}/ws")
async def item_ws(websocket: WebSocket, item_id: int):
    await websocket.accept()
    data = await websocket.receive_json()
    await websocket.send_json({"item": item_id, "got": data})
    await websocket.close(code=4321)
