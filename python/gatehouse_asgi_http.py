"""One ASGI HTTP request: receive() and send(), --timeout's clock, and the
front holding the response back (its scope and response frames:
gatehouse_asgi_response.py).

A body of up to 256 KiB with a Content-Length comes whole with the request
(REQ) and is one http.request message. A larger or unsized one is streamed
(REQ_STREAM, then REQ_BODY frames and REQ_END): each piece is an
http.request with more_body, and past BODY_HIGH bytes not yet taken by the
app the front is told WS_PAUSE (it stops reading the client) until the app
has taken most of them (WS_RESUME). The other way, the front sends WS_PAUSE
when the response's client is past max_temp_file_size behind: send() waits
for WS_RESUME.
"""

import asyncio
import collections
import os

from gatehouse_app import AppError, check_headers
from gatehouse_asgi_response import ClientDisconnected, Responder, read_scope
from gatehouse_wire import ABORT, END, FILE, REQ_END, START, TRAILERS, WS_PAUSE, WS_RESUME, pack_header

# A streamed body's bytes received and not yet taken by the app past which the front stops reading the client.
BODY_HIGH = 1 << 20
BODY_LOW = BODY_HIGH // 4
# A task cancelled for --timeout that is still running this long after (s) is answered for.
CANCEL_GRACE = 1.0


class HttpRequest(Responder):
    __slots__ = (
        "worker", "rid", "scope", "body", "task", "status", "headers", "declared", "encoded",
        "head_sent", "complete", "ended", "disconnected", "timed_out", "waiter", "inbox", "held", "paused",
        "trailing", "clock_at", "time_left", "held_back", "sent",
    )

    def __init__(self, worker, rid, payload):
        self.worker = worker
        self.rid = rid
        self.scope, self.body = read_scope(payload, worker.state, worker.below_mount)
        self.task = None
        self.status = None  # the status line once http.response.start came
        self.headers = None
        self.declared = None  # Content-Length the app declared
        self.sent = 0  # body bytes sent, counted when it declared one
        self.head_sent = False
        self.complete = False  # the app sent its last body message
        self.ended = False  # the front got the frame that ends this request
        self.disconnected = False
        self.timed_out = False
        self.waiter = None  # a receive() waiting for the disconnect, or for a streamed body
        self.inbox = None  # a streamed body's pieces not yet taken, then None once REQ_END is
        self.held = 0  # their bytes
        self.paused = False  # the front was told WS_PAUSE
        self.trailing = 0  # 1: trailers follow the body (http.response.trailers); 2: the body is over, they are due
        self.clock_at = None  # when --timeout's clock last started running; None: stopped
        self.time_left = None  # of --timeout, None: no timeout
        self.held_back = None  # a future while the front holds the response back (its client is far behind)

    def launch(self, loop):
        # A name of its own would be a string per task: Python 3.11 makes "Task-N" at once.
        return loop.create_task(self.run(), name="http")

    async def run(self):
        worker = self.worker
        if worker.timeout > 0:
            self.time_left = worker.timeout
            self.run_clock()
        try:
            await worker.app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            if self.timed_out:
                self.log("timed out after %ss; its task was cancelled" % worker.timeout)
                self.fail(504, "Gateway Timeout\n")
            else:
                self.end(ABORT)
        except Exception as exc:
            if not self.disconnected:
                self.log_exception(exc)
            self.fail(500, "Internal Server Error\n")
        else:
            if self.status is None:
                self.log("the app returned without starting a response")
                self.fail(500, "Internal Server Error\n")
            elif not self.complete:
                self.log("the app returned before its response was complete; connection cut")
                self.end(ABORT)
        finally:
            self.stop_clock()
            self.time_left = None
            self.end(END)  # after a disconnect: the front only waits for the request to be over
            worker.finished(self.rid)

    def run_clock(self):
        """--timeout counts the app's time: it runs, except while the app waits for the client (its next
        body bytes, or to take the response). The worker's heartbeat looks at the running clocks, rather
        than a timer made and cancelled for every request."""
        if self.time_left is not None and self.clock_at is None:
            self.clock_at = self.worker.loop.time()
            self.worker.clocked.add(self)

    def stop_clock(self):
        if self.clock_at is not None:
            self.time_left -= self.worker.loop.time() - self.clock_at
            self.clock_at = None
            self.worker.clocked.discard(self)

    async def off_the_clock(self, future):
        """Waits for the client: a slow client is not the app's time (body_timeout, in the front, is the client's)."""
        self.stop_clock()
        try:
            await future
        finally:
            self.run_clock()

    def over_time(self, now):
        return now - self.clock_at >= self.time_left

    def time_out(self):
        self.stop_clock()
        self.time_left = None  # the clock stops for good
        self.timed_out = True
        self.task.cancel()
        self.worker.loop.call_later(CANCEL_GRACE, self.abandon)

    def abandon(self):
        """The app swallowed its cancellation: the client gets its 504 now, and the task's sends fail from here on."""
        if self.task.done() or self.ended:
            return
        self.log("timed out after %ss and ignored its cancellation; answered without it" % self.worker.timeout)
        self.fail(504, "Gateway Timeout\n")
        self.client_gone()

    def client_gone(self):
        self.disconnected = True
        self.wake()
        self.let_go()

    def on_frame(self, kind, payload):
        """WS_PAUSE / WS_RESUME from the front: the client is far behind this response (send() waits), or has caught up."""
        if kind == WS_PAUSE:
            if self.held_back is None:
                self.held_back = self.worker.loop.create_future()
        elif kind == WS_RESUME:
            self.let_go()

    def let_go(self):
        held_back = self.held_back
        self.held_back = None
        if held_back is not None and not held_back.done():
            held_back.set_result(None)

    def wake(self):
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def stream_body(self):
        self.body = None
        self.inbox = collections.deque()

    def body_frame(self, kind, data):
        """REQ_BODY or REQ_END of a streamed body."""
        inbox = self.inbox
        if inbox is None:
            return
        inbox.append(data if kind != REQ_END else None)
        self.held += len(data)
        if self.held > BODY_HIGH and not self.paused:
            self.paused = True
            self.worker.write(pack_header(WS_PAUSE, self.rid, 0))
        self.wake()

    async def next_piece(self):
        """The next http.request of a streamed body, or None once the request is over."""
        inbox = self.inbox
        while not inbox and not self.disconnected and not self.complete:
            self.waiter = self.worker.loop.create_future()
            await self.off_the_clock(self.waiter)
            self.waiter = None
        if not inbox:
            return None
        data = inbox.popleft()
        if data is None:
            self.inbox = None
            return {"type": "http.request", "body": b"", "more_body": False}
        self.held -= len(data)
        if self.paused and self.held <= BODY_LOW:
            self.paused = False
            self.worker.write(pack_header(WS_RESUME, self.rid, 0))
        if inbox and inbox[0] is None:
            self.inbox = None
            return {"type": "http.request", "body": data, "more_body": False}
        return {"type": "http.request", "body": data, "more_body": True}

    async def receive(self):
        if self.inbox is not None and not self.disconnected:
            message = await self.next_piece()
            if message is not None:
                return message
        body = self.body
        if body is not None:
            self.body = None
            return {"type": "http.request", "body": body, "more_body": False}
        if not self.disconnected and not self.complete:
            self.waiter = self.worker.loop.create_future()
            await self.waiter
            self.waiter = None
        return {"type": "http.disconnect"}

    async def send(self, message):
        if self.disconnected:
            raise ClientDisconnected("the client went away")
        kind = message["type"]
        if kind == "http.response.start":
            self.start(message)
            if message.get("trailers", False):
                self.trailing = 1
        elif kind == "http.response.body":
            if self.status is None:
                raise AppError("http.response.body before http.response.start")
            if self.complete or self.trailing == 2:
                raise AppError("http.response.body after the response body was complete")
            more = message.get("more_body", False)
            self.body_part(message.get("body", b""), more or self.trailing == 1)
            if self.trailing and not more:
                self.trailing = 2
            await self.worker.drain()
            if self.held_back is not None:
                await self.off_the_clock(self.held_back)
                if self.disconnected:
                    raise ClientDisconnected("the client went away")
        elif kind == "http.response.trailers":
            self.send_trailers(message)
        elif kind == "http.response.pathsend":
            self.pathsend(message["path"])
        else:
            raise AppError("unexpected ASGI message type %r" % (kind,))

    def send_trailers(self, message):
        if self.trailing != 2:
            raise AppError("http.response.trailers needs trailers=True in http.response.start and the body's last part before it")
        fields = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in message.get("headers", ())]
        fields = check_headers(self.status, fields)[1]
        block = "\0".join(part for field in fields for part in field).encode("latin-1")
        self.worker.write(pack_header(TRAILERS, self.rid, len(block)) + block)
        if not message.get("more_trailers", False):
            self.complete = True
            self.end(END)
            self.wake()

    def pathsend(self, path):
        if self.status is None or self.head_sent:
            raise AppError("http.response.pathsend needs http.response.start and no body before it")
        st = os.stat(path)
        length = st.st_size if self.declared is None else min(self.declared, st.st_size)
        if self.declared is None:
            self.headers.append(("Content-Length", str(length)))
        head = self.head_block()
        spec = ("0\0%d\0%d\0%d\0" % (length, st.st_dev, st.st_ino)).encode() + os.fsencode(os.path.abspath(path))
        self.head_sent = self.complete = True
        self.worker.write(pack_header(START, self.rid, len(head)) + head + pack_header(FILE, self.rid, len(spec)) + spec)
        self.end(END)
        self.wake()
