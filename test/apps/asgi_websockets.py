"""Raw ASGI WebSocket apps for test/asgi-websocket.test.ts: one path per rule.

GET /log (HTTP) answers what the sockets saw: their disconnect codes and
reasons, and what the flow-control paths managed to do.
"""

import asyncio
import functools
import json

LOG = {"disconnects": [], "sent": 0, "open": 0}


def scope_json(scope):
    out = {}
    for key, value in scope.items():
        if key == "headers":
            value = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in value]
        elif isinstance(value, bytes):
            value = value.decode("latin-1")
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


async def until_disconnect(receive):
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            LOG["disconnects"].append([message["code"], message.get("reason", "")])
            return message


async def echo(scope, receive, send):
    """Echoes text and bytes; picks the subprotocol "chat" when offered; sends a header with the accept."""
    assert (await receive())["type"] == "websocket.connect"
    chosen = "chat" if "chat" in scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": chosen, "headers": [(b"x-accepted-by", b"gatehouse-test")]})
    LOG["open"] += 1
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                LOG["disconnects"].append([message["code"], message.get("reason", "")])
                return
            if message.get("text") is not None:
                if message["text"].startswith("close "):
                    _, code, reason = message["text"].split(" ", 2)
                    await send({"type": "websocket.close", "code": int(code), "reason": reason})
                    continue
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
    finally:
        LOG["open"] -= 1


async def scope_app(scope, receive, send):
    await receive()
    await send({"type": "websocket.accept", "subprotocol": (scope["subprotocols"] or [None])[0]})
    await send({"type": "websocket.send", "text": json.dumps(scope_json(scope))})
    await send({"type": "websocket.close", "code": 1000})


async def deny(scope, receive, send):
    await receive()
    await send({"type": "websocket.http.response.start", "status": 401, "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Token")]})
    await send({"type": "websocket.http.response.body", "body": b"no entry ", "more_body": True})
    await send({"type": "websocket.http.response.body", "body": b"without a token"})


async def reject(scope, receive, send):
    await receive()
    await send({"type": "websocket.close"})


async def boom_early(scope, receive, send):
    await receive()
    raise RuntimeError("failed before accepting")


async def boom_late(scope, receive, send):
    await receive()
    await send({"type": "websocket.accept"})
    await receive()
    raise RuntimeError("failed after accepting")


async def slow_accept(scope, receive, send):
    """Thinks before accepting: the client may be gone by then."""
    await receive()
    await asyncio.sleep(0.5)
    await until_disconnect(receive)


async def bad_close(scope, receive, send):
    """Closes with 1005, a code RFC 6455 keeps off the wire."""
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": 1005})
    await until_disconnect(receive)


async def deaf(scope, receive, send):
    """Accepts and never reads: the front must stop reading the client."""
    await receive()
    await send({"type": "websocket.accept"})
    await asyncio.sleep(3600)


async def firehose(scope, receive, send):
    """Sends 64 KiB messages until the client is gone, counting what send() let through."""
    await receive()
    await send({"type": "websocket.accept"})
    chunk = b"x" * 65536
    try:
        while True:
            await send({"type": "websocket.send", "bytes": chunk})
            LOG["sent"] += len(chunk)
    except OSError:
        pass


async def silent(scope, receive, send):
    """Returns without accepting or closing: a 500."""
    await receive()


async def bye(scope, receive, send):
    """Accepts, says bye and returns: the socket closes with 1000."""
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "bye"})


async def tasked(scope, receive, send):
    """receive() used as apps use it besides awaiting it: in a task of its own, and under a timeout that cancels it."""
    await asyncio.create_task(receive())  # websocket.connect
    await send({"type": "websocket.accept"})
    try:
        await asyncio.wait_for(receive(), 0.05)
    except asyncio.TimeoutError:
        await send({"type": "websocket.send", "text": "timed out"})
    first = await asyncio.ensure_future(receive())
    second = asyncio.create_task(receive())
    await send({"type": "websocket.send", "text": "got " + first["text"]})
    await send({"type": "websocket.send", "text": "got " + (await second)["text"]})
    await until_disconnect(receive)


async def wrapped(scope, receive, send):
    """echo behind a middleware that wraps receive and send as tracing middleware do (functools.wraps)."""

    @functools.wraps(receive)
    async def traced_receive():
        return await receive()

    @functools.wraps(send)
    async def traced_send(message):
        await send(message)

    await echo(scope, traced_receive, traced_send)


ROUTES = {
    "/echo": echo,
    "/wrapped": wrapped,
    "/tasked": tasked,
    "/silent": silent,
    "/bye": bye,
    "/scope": scope_app,
    "/deny": deny,
    "/reject": reject,
    "/boom-early": boom_early,
    "/boom-late": boom_late,
    "/deaf": deaf,
    "/slow-accept": slow_accept,
    "/bad-close": bad_close,
    "/firehose": firehose,
}


async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await ROUTES[scope["path"][len(scope["root_path"]) :]](scope, receive, send)
    elif scope["type"] == "http":
        body = json.dumps(dict(LOG, upgrade=dict(scope["headers"]).get(b"upgrade", b"").decode())).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return


def wsgi_app(environ, start_response):
    sent = environ["wsgi.input"].read().decode("latin-1")
    body = json.dumps({"interface": "wsgi", "upgrade": environ.get("HTTP_UPGRADE", ""), "connection": environ.get("HTTP_CONNECTION", ""), "body": sent}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
