"""A Flask-SocketIO app in threading mode (Debian's python3-flask-socketio)
for test/wsgi-flask-socketio.test.ts: a WSGI app whose clients talk over
Engine.IO long-polling (WSGI workers offer no WebSocket)."""

import os

from flask import Flask
from flask_socketio import SocketIO, emit

app = Flask(__name__)
socketio = SocketIO(app, async_mode="threading")


@socketio.on("connect")
def connect():
    emit("welcome", {"pid": os.getpid()})


@socketio.on("shout")
def shout(data):
    emit("heard", {"text": data.upper(), "pid": os.getpid()})
