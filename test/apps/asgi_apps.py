"""Raw ASGI 3 apps for test/asgi.test.ts: one path per message rule."""

import asyncio
import json
import os
import time

# What the lifespan left, and what requests saw of a client going away.
EVENTS = []
RUNNING = [0, 0]  # /slow requests running now, and the most at once so far
FLOOD = [0, ""]  # chunks the last /flood sent so far, and how it ended ("" while it runs)
GATE = []  # the event /wait-gate waits on (made in the loop that serves it)
BIG_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "asgi_apps.py")


async def read_body(receive):
    chunks, messages = [], 0
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        messages += 1
        chunks.append(message["body"])
        if not message.get("more_body", False):
            return b"".join(chunks), messages


async def send_json(send, value, status=200):
    body = json.dumps(value).encode()
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def jsonable_scope(scope):
    out = {}
    for key, value in scope.items():
        if key == "headers":
            out[key] = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in value]
        elif isinstance(value, bytes):
            out[key] = value.decode("latin-1")
        elif isinstance(value, tuple):
            out[key] = list(value)
        else:
            out[key] = value
    out["state"] = {k: v for k, v in scope.get("state", {}).items() if isinstance(v, (str, int))}
    return out


SAME_START_UNSIZED = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain"), (b"keep-alive", b"timeout=99")]}
SAME_START_SIZED = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")]}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["started_by"] = "lifespan"
                scope["state"]["pid"] = os.getpid()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.sleep(float(os.environ.get("SHUTDOWN_DELAY", "0")))
                print("lifespan shutdown in %d" % os.getpid(), flush=True)
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path.endswith("/scope"):
        await send_json(send, jsonable_scope(scope))
    elif path.endswith("/echo"):
        body, messages = await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-messages", str(messages).encode())]})
        await send({"type": "http.response.body", "body": body})
    elif path.endswith("/stream"):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for i in range(5):
            await send({"type": "http.response.body", "body": b"part %d\n" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path.endswith("/sse"):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
        for i in range(3):
            await send({"type": "http.response.body", "body": b"data: event %d\n\n" % i, "more_body": True})
            await asyncio.sleep(0.4)
        await send({"type": "http.response.body", "body": b""})
    elif path.endswith("/wait-disconnect"):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": b"data: hello\n\n", "more_body": True})
        await read_body(receive)
        message = await receive()
        EVENTS.append(message["type"])
    elif path.endswith("/sse-forever"):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"data: tick\n\n", "more_body": True})
                await asyncio.sleep(0.05)
        except OSError as exc:
            EVENTS.append(type(exc).__name__)
    elif path.endswith("/events"):
        await send_json(send, EVENTS)
    elif path.endswith("/slow"):
        RUNNING[0] += 1
        RUNNING[1] = max(RUNNING)
        try:
            await asyncio.sleep(float(scope["query_string"].decode().partition("=")[2] or "1"))
        finally:
            RUNNING[0] -= 1
        await send_json(send, {"pid": os.getpid()})
    elif path.endswith("/flood"):
        # 256 MiB, never awaiting anything but send(): only backpressure can hold it back.
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/octet-stream")]})
        chunk = b"x" * 65536
        FLOOD[:] = [0, ""]
        try:
            for _ in range(4096):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                FLOOD[0] += 1
            await send({"type": "http.response.body", "body": b""})
            FLOOD[1] = "done"
        except OSError as exc:
            FLOOD[1] = type(exc).__name__
    elif path.endswith("/flooded"):
        await send_json(send, {"chunks": FLOOD[0], "ended": FLOOD[1]})
    elif path.endswith("/most-at-once"):
        await send_json(send, {"most": RUNNING[1]})
    elif path.endswith("/stubborn"):
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await asyncio.sleep(30)  # ignores being cancelled
    elif path.endswith("/block"):
        print("blocking the loop for %s" % path, flush=True)
        time.sleep(float(scope["query_string"].decode().partition("=")[2] or "5"))
        await send_json(send, {"blocked": True})
    elif path.endswith("/wait-gate"):
        GATE[:] = [asyncio.Event()]
        print("waiting at the gate", flush=True)
        await GATE[0].wait()
        await send_json(send, {"pid": os.getpid()})
    elif path.endswith("/open-gate-and-block"):
        # /wait-gate then answers in the loop's next turn, and this task, run after it in that turn,
        # blocks the loop before the turn's answers are written.
        GATE[0].set()
        await asyncio.sleep(0)
        print("blocking the loop for %s" % path, flush=True)
        time.sleep(20)
    elif path.endswith("/pid"):
        await send_json(send, {"pid": os.getpid()})
    elif path.endswith("/pathsend"):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.pathsend", "path": BIG_FILE})
    elif path.endswith("/raise-before"):
        raise RuntimeError("boom before the start")
    elif path.endswith("/raise-after"):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("boom after the start")
    elif path.endswith("/unfinished"):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    elif path.endswith("/no-response"):
        return
    elif path.endswith("/same-start"):
        # The same start message every time (as most apps send), with a body of the asked length.
        await send(SAME_START_UNSIZED if scope["query_string"] != b"sized" else SAME_START_SIZED)
        await send({"type": "http.response.body", "body": b"x" * (5 if scope["query_string"] == b"sized" else len(scope["query_string"]))})
    elif path.endswith("/off-length"):
        # A declared length the body does not keep to: ?declared=N&parts=a,b (each part a body message).
        q = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&"))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", q["declared"].encode())]})
        parts = q.get("parts", "").split(",")
        for i, part in enumerate(parts):
            await send({"type": "http.response.body", "body": part.encode(), "more_body": i < len(parts) - 1})
    elif path.endswith("/str-body"):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": "text, not bytes"})
    elif path.endswith("/bad-start"):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-bad", b"a\r\nb")]})
        await send({"type": "http.response.body", "body": b"never"})
    else:
        await send_json(send, {"error": "not found"}, 404)


async def no_lifespan(scope, receive, send):
    """An app that knows only HTTP: --lifespan auto serves it anyway."""
    assert scope["type"] == "http"
    await send_json(send, {"lifespan": "none"})


async def failing_startup(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "the database is not there"})
        return
    await send_json(send, {})


async def hanging_startup(scope, receive, send):
    """Its lifespan startup never completes (it waits on a service that is not there)."""
    if scope["type"] == "lifespan":
        await receive()
        await asyncio.Event().wait()
    await send_json(send, {})


async def fails_when_flagged(scope, receive, send):
    """Its lifespan startup fails while the file named by FAIL_FLAG exists (a broken deploy)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if os.path.exists(os.environ["FAIL_FLAG"]):
                    await send({"type": "lifespan.startup.failed", "message": "flagged broken"})
                    return
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send_json(send, {"pid": os.getpid()})


def three_args(scope, receive, send):
    """Neither a coroutine function nor a two-argument WSGI callable: auto cannot tell."""
    return app(scope, receive, send)


def wsgi_app(environ, start_response):
    body = json.dumps({"interface": "wsgi", "path": environ["PATH_INFO"], "script": environ["SCRIPT_NAME"]}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


# WSGI until the file named by SWITCH_FLAG exists, then ASGI: the app changing interface across a reload.
switching = app if os.path.exists(os.environ.get("SWITCH_FLAG", "")) else wsgi_app
