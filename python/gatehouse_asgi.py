"""ASGI mode: one asyncio event loop (uvloop when it imports) runs many requests at once.

The front sends a REQ only when this worker has room (--max-concurrency), so
every request starts as a task at once and none waits behind another. The
loop sends a HEARTBEAT frame every fraction of --timeout: when sync code
blocks the loop, the heartbeats stop and the front replaces the worker
(faulthandler prints where it was stuck), once SIGUSR1 has had it write out
the answers it finished (hand_over()). A request running past --timeout
has its task cancelled (504, or a cut connection if its response started);
the worker goes on serving the others.

    gatehouse_asgi.py        this loop: the stream to the front, tasks, stopping
    gatehouse_asgi_http.py   one HTTP request: receive(), send(), its clock
    gatehouse_asgi_websocket.py  one WebSocket: scope, receive(), send()
    gatehouse_asgi_response.py  what both share: the scope, the response frames
    gatehouse_lifespan.py    the lifespan protocol (startup before READY, shutdown at exit)
"""

import asyncio
import json
import math
import os
import signal
import sys
from time import monotonic

from gatehouse_app import release_free_memory
from gatehouse_asgi_http import HttpRequest
from gatehouse_asgi_response import routes_below_mount
from gatehouse_asgi_websocket import WebSocket
from gatehouse_lifespan import Lifespan
from gatehouse_wire import (
    BOOT_ERROR, CANCEL, HEADER_SIZE, HEARTBEAT, LEAVING, READY, REQ, REQ_BODY, REQ_END, REQ_STREAM, REVOKED, WS_OPEN, WS_RESUME,
    WS_TEXT, pack_header, unpack_header,
)

# The front replaces a worker whose heartbeats stop for --timeout; beats go at least this often (s).
BEAT_MAX_INTERVAL = 1.0
# Frames held for one write at most (bytes): past it they go at once, so the stream's backpressure still holds.
OUT_HIGH = 1 << 16


def new_loop():
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class FrontProtocol(asyncio.Protocol):
    """The worker's end of its stream: cuts it into frames, and holds the app back while the front is behind."""

    def __init__(self, worker):
        self.worker = worker
        self.buf = b""
        self.transport = None
        self.unpaused = None  # a future while writing is paused

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        worker = self.worker
        if monotonic() >= worker.beat_due:
            # Before any request read here starts: see AsgiWorker.send_beat().
            worker.send_beat()
        buf = self.buf + data if self.buf else data
        pos, size = 0, len(buf)
        while size - pos >= HEADER_SIZE:
            kind, rid, length = unpack_header(buf, pos)
            end = pos + HEADER_SIZE + length
            if end > size:
                break
            if kind == REQ:
                worker.start(rid, buf[pos + HEADER_SIZE : end], HttpRequest)
            elif kind == REQ_BODY or kind == REQ_END:
                request = worker.requests.get(rid)
                if request is not None:
                    request.body_frame(kind, buf[pos + HEADER_SIZE : end])
            elif kind == REQ_STREAM:
                request = worker.start(rid, buf[pos + HEADER_SIZE : end], HttpRequest)
                if request is not None:
                    request.stream_body()
            elif WS_TEXT <= kind <= WS_RESUME:
                socket = worker.requests.get(rid)
                if socket is not None:
                    socket.on_frame(kind, buf[pos + HEADER_SIZE : end])
            elif kind == WS_OPEN:
                worker.start(rid, buf[pos + HEADER_SIZE : end], WebSocket)
            elif kind == CANCEL:
                worker.cancel(rid)
            # REVOKE: every request here started at once, so there is nothing to give back.
            pos = end
        self.buf = buf[pos:] if pos < size else b""

    def pause_writing(self):
        self.unpaused = self.worker.loop.create_future()

    def resume_writing(self):
        if self.unpaused is not None and not self.unpaused.done():
            self.unpaused.set_result(None)
        self.unpaused = None

    def connection_lost(self, exc):
        self.resume_writing()
        self.worker.front_gone()


class AsgiWorker:
    def __init__(self, app, settings):
        self.app = app
        self.timeout = settings.get("timeout", 0) or 0
        self.state = {}  # lifespan state; each request gets a copy in scope["state"]
        self.lifespan = Lifespan(app, settings.get("lifespan", "auto"), self.state)
        self.below_mount = routes_below_mount(settings.get("asgi_path", "auto"))
        self.shutdown_timeout = settings.get("graceful_timeout", 30)
        self.requests = {}
        self.clocked = set()  # requests whose --timeout clock runs
        self.loop = None
        self.protocol = None
        self.transport = None
        self.fd = -1  # the stream's, written by flush()
        self.out = []  # frames written in this turn of the loop, not yet sent
        self.out_size = 0
        self.flushing = False  # in flush(): hand_over() must not write in the middle of it
        self.beat_interval = 0.0
        self.beat_due = math.inf  # when the next heartbeat is due (time.monotonic()); never with --timeout 0
        self.stopping = False
        self.idle = None  # set once stopping and no request runs
        self.gone = None  # set once the front has closed the stream

    async def run(self, sock, token):
        # Kept: asyncio.get_running_loop() makes a getpid() system call each time (CPython 3.11).
        self.loop = loop = asyncio.get_running_loop()
        failure = await self.lifespan.startup()
        if failure is not None:
            payload = failure.encode("utf-8", "replace")
            sock.sendall(pack_header(BOOT_ERROR, 0, len(payload)) + payload)
            return 3
        self.idle = asyncio.Event()
        self.gone = asyncio.Event()
        sock.setblocking(False)
        transport, self.protocol = await loop.create_connection(lambda: FrontProtocol(self), sock=sock)
        self.transport = transport
        self.fd = sock.fileno()
        loop.add_signal_handler(signal.SIGTERM, self.stop)
        # Not the loop's handler: that one waits for the loop, and this is for a loop that is stuck.
        signal.signal(signal.SIGUSR1, self.hand_over)
        info = json.dumps({"pid": os.getpid(), "python": sys.version.split()[0], "interface": "asgi"}).encode()
        release_free_memory()
        self.write(pack_header(READY, token, len(info)) + info)
        if self.timeout > 0:
            self.beat_interval = min(BEAT_MAX_INTERVAL, self.timeout / 4)
            self.beat(loop)
        await self.idle.wait()
        await self.lifespan.shutdown(self.shutdown_timeout)
        if not transport.is_closing():
            # SIGTERM, not the front: say so (every request it started is answered). The front takes
            # back what it sends meanwhile (start() answers REVOKED), then closes the stream.
            self.write(pack_header(LEAVING, 0, 0))
            try:
                await asyncio.wait_for(self.gone.wait(), self.shutdown_timeout)
            except asyncio.TimeoutError:
                pass
        self.flush()
        transport.close()
        return 0

    def write(self, frame):
        """Frames written in one turn of the loop go out in one system call, after it: the requests
        that came in one read start together, and their answers leave together."""
        if not self.out:
            self.loop.call_soon(self.flush)
        self.out.append(frame)
        self.out_size += len(frame)
        if self.out_size >= OUT_HIGH:
            self.flush()

    def flush(self):
        """Writes the frames held, at once: uvloop's transport would hold them to the end of the
        loop's turn, and a turn may never end (hand_over()). The transport only takes what the
        stream cannot (it is full), and then all that follows, until it has written it."""
        out = self.out
        if out:
            self.flushing = True
            self.out = []
            self.out_size = 0
            data = out[0] if len(out) == 1 else b"".join(out)
            transport = self.transport
            try:
                # Closing, the transport may have closed the descriptor already, and its number be another file's.
                if not transport.get_write_buffer_size() and not transport.is_closing():
                    try:
                        sent = os.write(self.fd, data)
                    except OSError:
                        sent = 0  # full, or the front is gone: the transport deals with either
                    if sent == len(data):
                        return
                    data = data[sent:]
                transport.write(data)
            finally:
                self.flushing = False

    def hand_over(self, signum, frame):
        """SIGUSR1: the front is about to kill this worker, its loop blocked (by sync code in one
        request). The answers other requests finished in the loop's last turn are still held for
        that turn's one write: they leave now rather than die with the worker. Python runs this
        on the blocked thread between two of its bytecodes (or in a sleep); if that was in
        flush(), it is writing them already."""
        if not self.flushing:
            self.flush()

    def beat(self, loop):
        """The heartbeat's timer, and --timeout for the requests past it (within an interval: a quarter of it, at most a second)."""
        self.send_beat()
        now = loop.time()
        for request in [r for r in self.clocked if r.over_time(now)]:
            request.time_out()
        loop.call_later(self.beat_interval, self.beat, loop)

    def send_beat(self):
        """A HEARTBEAT, written at once. Its timer sends one every interval, and so does the reading
        of requests once one is due: no request read after a beat fell due starts before that beat
        has left. So when this worker is killed with its loop blocked, the front may give a request
        sent after its last beat fell due to another worker: it was never started here."""
        if not self.protocol.transport.is_closing():
            self.write(pack_header(HEARTBEAT, 0, 0))
            self.flush()
        self.beat_due = monotonic() + self.beat_interval

    def start(self, rid, payload, kind):
        if self.stopping:
            self.write(pack_header(REVOKED, rid, 0))  # the front sends it to another worker
            return None
        request = kind(self, rid, payload)
        self.requests[rid] = request
        request.task = request.launch(self.loop)
        return request

    def cancel(self, rid):
        request = self.requests.get(rid)
        if request is not None:
            request.client_gone()

    def finished(self, rid):
        del self.requests[rid]
        if self.stopping and not self.requests:
            self.idle.set()

    async def drain(self):
        """Waits while the stream to the front is full (the front reads it at once, so briefly)."""
        waiting = self.protocol.unpaused
        if waiting is not None:
            await waiting

    def stop(self):
        """SIGTERM, or the front closed the stream: finish what runs, then shut down."""
        self.stopping = True
        if not self.requests:
            self.idle.set()

    def front_gone(self):
        for request in self.requests.values():
            if isinstance(request, WebSocket):
                request.gone(1012, "")  # their sockets went with the front
        self.gone.set()
        self.stop()


def serve_asgi(app, sock, settings, token=0):
    loop = new_loop()
    asyncio.set_event_loop(loop)
    try:
        code = loop.run_until_complete(AsgiWorker(app, settings).run(sock, token))
    except (ConnectionError, OSError):
        code = 0  # the front went away
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)
