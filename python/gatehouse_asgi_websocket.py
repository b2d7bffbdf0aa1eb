"""One ASGI WebSocket: the scope from a WS_OPEN payload, receive() and send().

The front does RFC 6455 (the npm `ws` package, src/asgi/websocket-session.ts):
framing, masking, UTF-8 checks, pings, permessage-deflate, the size limit.
Only messages travel on the wire: WS_TEXT and WS_BINARY both ways, WS_CLOSE
both ways (the app closes; the socket closed, with the code the app's
websocket.disconnect carries), WS_PAUSE and WS_RESUME both ways.

Before accepting, the app may deny the handshake with an HTTP response (the
websocket.http.response extension); a close before accept is a 403, an
exception or a return before accept a 500, as uvicorn answers. After accept,
an exception closes the socket with 1011 and a return with 1000.

Backpressure: messages the app has not received yet wait here; past
INBOX_HIGH bytes the front is told WS_PAUSE (it stops reading the client)
and WS_RESUME once the app has taken most of them. The front says WS_PAUSE
when the client is slow to read: websocket.send then waits.
"""

import asyncio
import contextvars
import struct

from gatehouse_app import AppError
from gatehouse_asgi_response import ClientDisconnected, Responder, read_scope
from gatehouse_wire import (
    ABORT, END, WS_ACCEPT, WS_BINARY, WS_CLOSE, WS_PAUSE, WS_RESUME, WS_TEXT, pack_header,
)

ASGI = {"version": "3.0", "spec_version": "2.4"}
EXTENSIONS = {"websocket.http.response": {}}
SCHEMES = {"http": "ws", "https": "wss"}
NO_SUBPROTOCOLS = ()  # shared by the scopes of clients that offer none (ASGI asks for an iterable)
INBOX_HIGH = 1 << 20
INBOX_LOW = INBOX_HIGH // 4
# What a waiting message costs besides its bytes (its dict and tuple), so that tiny messages are held back too.
MESSAGE_COST = 256
CLOSE_CODE = struct.Struct("<H")
DONE_CONTEXT = contextvars.Context()
TASK_NAME = "websocket"

CONNECTING, OPEN, CLOSING, CLOSED, RESPONDING = range(5)
CONNECT_PENDING = object()  # a socket's inbox while its websocket.connect is the only message
RECEIVE = object()  # WebSocket.__call__ without a message: receive()

# An open socket keeps its scope as long as it is open: what many scopes hold alike (header names,
# these headers' values and those (name, value) pairs, the server, the client's host, the path) is one
# object for all of them, from a table emptied when it is full (a client sending ever new names only
# keeps it turning over).
SHARED_MAX = 4096
SHARED_VALUES = frozenset((
    b"host", b"upgrade", b"connection", b"origin", b"user-agent", b"accept-encoding", b"accept-language",
    b"cache-control", b"pragma", b"sec-websocket-version", b"sec-websocket-extensions", b"sec-websocket-protocol",
))
_shared = {}


def shared(value):
    got = _shared.get(value)
    if got is None:
        if len(_shared) >= SHARED_MAX:
            _shared.clear()
        _shared[value] = got = value
    return got


class _Scope:
    """Its instances' dicts are the scopes: filled in the same order, they share one table of keys
    (PEP 412, as instance dicts do) and hold only their values, less than half a dict's size."""


def websocket_scope(payload, state, below_mount=False):
    """The WebSocket scope from a WS_OPEN payload, what it shares with other scopes shared."""
    http = read_scope(payload, state, below_mount)[0]
    headers = http["headers"]
    offered = [v.decode("latin-1") for n, v in headers if n == b"sec-websocket-protocol"]
    client = http["client"]
    scheme = http["scheme"]
    scope = _Scope().__dict__
    scope["type"] = "websocket"
    scope["asgi"] = ASGI
    scope["http_version"] = http["http_version"]
    scope["scheme"] = SCHEMES.get(scheme, scheme)
    scope["path"] = shared(http["path"])
    scope["raw_path"] = shared(http["raw_path"])
    scope["query_string"] = http["query_string"]
    scope["root_path"] = shared(http["root_path"])
    scope["headers"] = [shared((n, v)) if n in SHARED_VALUES else (shared(n), v) for n, v in headers]
    scope["client"] = None if client is None else (shared(client[0]), client[1])
    scope["server"] = shared(http["server"])
    scope["subprotocols"] = [p.strip() for v in offered for p in v.split(",") if p.strip()] if offered else NO_SUBPROTOCOLS
    scope["extensions"] = EXTENSIONS
    scope["state"] = http["state"]
    return scope


class WebSocket(Responder):
    # The denial response's fields (Responder's) are the class's until a denial sets them: in the
    # instance's __dict__, made then, so that an open socket does not carry them.
    __slots__ = (
        "worker", "rid", "scope", "task", "state", "inbox", "held", "waiter", "paused", "unpaused",
        "disconnected", "ended", "__dict__",
    )
    status = None
    headers = None
    declared = None
    sent = 0
    head_sent = False
    complete = False

    def __init__(self, worker, rid, payload):
        self.worker = worker
        self.rid = rid
        self.scope = websocket_scope(payload, worker.state, worker.below_mount)
        self.task = None
        self.state = CONNECTING
        # Messages the app has not taken: CONNECT_PENDING until it takes its websocket.connect, then a list
        # from the first message on (an idle socket keeps none). A list rather than a deque: a deque costs
        # a 64-slot block per socket; this one is short (INBOX_HIGH).
        self.inbox = CONNECT_PENDING
        self.held = 0  # bytes of messages in the inbox, with MESSAGE_COST each
        self.waiter = None  # a receive() waiting for a message
        self.paused = False  # the front was told WS_PAUSE
        self.unpaused = None  # a future while the front says the client is slow
        self.disconnected = False  # the socket is closed: the app has its websocket.disconnect
        self.ended = False  # the END (or ABORT) frame is sent

    def launch(self, loop):
        """The app's coroutine is the task itself, with no coroutine of ours around it (an open socket
        costs one less); done() finishes what the app left."""
        try:
            # The socket itself is the app's receive and send (__call__), not two bound methods made for them.
            app = self.worker.app(self.scope, self, self)
            # A name of its own would be a string per task: Python 3.11 makes "Task-N" at once.
            task = loop.create_task(app, name=TASK_NAME) if asyncio.iscoroutine(app) else asyncio.ensure_future(app, loop=loop)
        except Exception as exc:  # the call itself failed: done() says so as for a failure inside
            task = loop.create_future()
            task.set_exception(exc)
        # done() reads no context variable: one context for all, not a copy per socket; and the socket
        # itself is the callback (__call__).
        task.add_done_callback(self, context=DONE_CONTEXT)
        return task

    def __call__(self, message=RECEIVE):
        """The app's receive() (no argument) and send(message), and asyncio's callback once the app's
        task is done (a future): one object for the three, as an open socket holds all three."""
        if message is RECEIVE:
            return self.receive()
        if asyncio.isfuture(message):
            return self.done(message)
        return self.send(message)

    def done(self, task):
        try:
            if task.cancelled():
                self.failed()
            elif task.exception() is not None:
                if not self.disconnected:
                    self.log_exception(task.exception())
                self.failed()
            elif self.state == CONNECTING:
                self.log("the app returned without accepting or closing the WebSocket")
                self.fail(500, "Internal Server Error\n")
            elif self.state == OPEN:
                self.close(1000, "")
            elif self.state == RESPONDING and not self.complete:
                self.log("the app returned before its denial response was complete; connection cut")
                self.end(ABORT)
        finally:
            self.end(END)
            self.worker.finished(self.rid)

    def failed(self):
        if self.state == OPEN:
            self.close(1011, "")
        elif self.state == CONNECTING or self.state == RESPONDING:
            self.fail(500, "Internal Server Error\n")  # a denial response already started is cut

    # --- from the front

    def on_frame(self, kind, payload):
        if kind == WS_TEXT:
            self.push({"type": "websocket.receive", "text": payload.decode("utf-8")}, len(payload) + MESSAGE_COST)
        elif kind == WS_BINARY:
            self.push({"type": "websocket.receive", "bytes": payload}, len(payload) + MESSAGE_COST)
        elif kind == WS_CLOSE:
            self.gone(CLOSE_CODE.unpack_from(payload)[0], payload[2:].decode("utf-8", "replace"))
        elif kind == WS_PAUSE:
            if self.unpaused is None:
                self.unpaused = self.worker.loop.create_future()
        elif kind == WS_RESUME:
            self.resume()

    def queue(self, entry):
        inbox = self.inbox
        if inbox is CONNECT_PENDING:
            self.inbox = [({"type": "websocket.connect"}, 0), entry]
        elif inbox is None:
            self.inbox = [entry]
        else:
            inbox.append(entry)

    def push(self, message, size):
        inbox = self.inbox
        if inbox is None or inbox is CONNECT_PENDING:
            self.queue((message, size))
        else:
            inbox.append((message, size))
        self.held += size
        if self.held > INBOX_HIGH and not self.paused:
            self.paused = True
            self.worker.write(pack_header(WS_PAUSE, self.rid, 0))
        self.wake()

    def gone(self, code, reason):
        """The socket is closed (or never opened): every receive() from now on says so."""
        if self.disconnected:
            return
        self.disconnected = True
        self.state = CLOSED
        self.queue(({"type": "websocket.disconnect", "code": code, "reason": reason}, 0))
        self.wake()
        self.resume()

    def client_gone(self):
        """CANCEL: the client went away during the handshake."""
        self.gone(1006, "")

    def resume(self):
        waiting, self.unpaused = self.unpaused, None
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    def wake(self):
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    # --- the app's side

    async def receive(self):
        # As few locals as can be: an idle socket's app waits here, in a coroutine their number sizes.
        while not self.ready():
            self.waiter = self.worker.loop.create_future()
            await self.waiter
            self.waiter = None
        return self.take()

    def ready(self):
        inbox = self.inbox
        return inbox is CONNECT_PENDING or bool(inbox)

    def take(self):
        """The next message (there is one: ready())."""
        inbox = self.inbox
        if inbox is CONNECT_PENDING:
            self.inbox = None
            return {"type": "websocket.connect"}
        message, size = inbox.pop(0)
        if size:
            self.held -= size
            if self.paused and self.held <= INBOX_LOW:
                self.paused = False
                self.worker.write(pack_header(WS_RESUME, self.rid, 0))
        elif message["type"] == "websocket.disconnect":
            inbox.append((message, 0))
        return message

    async def send(self, message):
        kind = message["type"]
        if kind == "websocket.send":
            if self.state != OPEN:
                self.refuse(kind)
            text = message.get("text")
            if text is not None:
                data = text.encode("utf-8")
                frame = WS_TEXT
            else:
                data = message.get("bytes")
                if data is None:
                    raise AppError("websocket.send needs text or bytes")
                frame = WS_BINARY
            self.worker.write(pack_header(frame, self.rid, len(data)) + data)
            while self.unpaused is not None:
                await self.unpaused
            await self.worker.drain()
        elif kind == "websocket.accept":
            if self.state != CONNECTING:
                self.refuse(kind)
            parts = [message.get("subprotocol") or ""]
            for name, value in message.get("headers") or ():
                parts.append(name.decode("latin-1"))
                parts.append(value.decode("latin-1"))
            block = "\0".join(parts).encode("latin-1")
            self.state = OPEN
            self.worker.write(pack_header(WS_ACCEPT, self.rid, len(block)) + block)
        elif kind == "websocket.close":
            if self.state == CONNECTING:
                self.state = CLOSED
                self.fail(403, "Forbidden\n")
                self.gone(1006, "")
            elif self.state == OPEN:
                self.close(message.get("code") or 1000, message.get("reason") or "")
            # Closing a socket already closing or closed does nothing.
        elif kind == "websocket.http.response.start":
            if self.state != CONNECTING:
                self.refuse(kind)
            self.state = RESPONDING
            self.start(message)
        elif kind == "websocket.http.response.body":
            if self.state != RESPONDING or self.complete:
                raise AppError("websocket.http.response.body without websocket.http.response.start, or after the last one")
            self.body_part(message.get("body", b""), message.get("more_body", False))
            if self.complete:
                self.gone(1006, "")  # the handshake ends with the response
        else:
            raise AppError("unexpected ASGI message type %r" % (kind,))

    def refuse(self, kind):
        if self.disconnected:
            raise ClientDisconnected("the client went away")
        raise AppError("%s: the WebSocket is %s" % (kind, ("connecting", "open", "closing", "closed", "denied")[self.state]))

    def close(self, code, reason):
        self.state = CLOSING
        payload = CLOSE_CODE.pack(code) + reason.encode("utf-8")
        self.worker.write(pack_header(WS_CLOSE, self.rid, len(payload)) + payload)
