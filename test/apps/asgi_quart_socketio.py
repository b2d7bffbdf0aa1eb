"""A Quart app (HTTP, a request body, lifespan, a WebSocket route) and a
python-socketio ASGI app (Debian's python3-quart, python3-socketio) for
test/asgi-quart-socketio.test.ts."""

import os

import socketio
from quart import Quart, jsonify, request, websocket

quart_app = Quart(__name__)


@quart_app.before_serving
async def startup():
    quart_app.config["STARTED_IN"] = os.getpid()


@quart_app.route("/")
async def index():
    return "hello from quart"


@quart_app.route("/pid")
async def pid():
    return str(os.getpid())


@quart_app.route("/upload", methods=["POST"])
async def upload():
    data = await request.get_data()
    return jsonify(length=len(data), started_in=quart_app.config.get("STARTED_IN"), pid=os.getpid())


@quart_app.websocket("/ws")
async def quart_ws():
    name = websocket.args.get("name", "?")
    while True:
        message = await websocket.receive()
        await websocket.send("quart %s: %s" % (name, message))


sio = socketio.AsyncServer(async_mode="asgi")
socketio_app = socketio.ASGIApp(sio)


@sio.event
async def connect(sid, environ, auth=None):
    await sio.emit("welcome", {"sid": sid}, to=sid)


@sio.event
async def ping(sid, data):
    return {"pong": data}


@sio.event
async def shout(sid, data):
    await sio.emit("heard", {"text": data.upper()}, to=sid)
