"""Sync mode: the main thread runs one request at a time, in the order received.

The main thread reads the stream itself whenever it has nothing to do: no
thread hand-off on the hot path. While it runs a long request, a watcher
thread polls the stream instead, so the front can still take back requests
that have not started (REVOKE) and stop the running one (CANCEL).
"""

import threading
import time
from time import perf_counter

from gatehouse_wire import LEAVING, REVOKED, pack_header

# How often the watcher thread looks at the stream while a request runs (s).
WATCH_INTERVAL = 0.01
# While more requests wait here (the front sends a busy worker several) and the
# app answers them quickly (the last one took under QUICK_SECONDS), whole
# responses are written together: one system call for several, and one wake-up
# of the front for them (each costs both sides far more than the write, on a
# VM most). A response waits at most about HOLD_SECONDS for the others, or
# until the watcher's next look if the request after it is slow; an app slower
# than QUICK_SECONDS has its responses written one by one.
QUICK_SECONDS = 0.0002
HOLD_SECONDS = 0.001


def watch(stream):
    """Polls the stream while the main thread is busy with one request for a while."""
    seen = None
    while True:
        time.sleep(WATCH_INTERVAL)
        if stream.held:
            stream.flush()
        current = stream.current
        if current is not None and current == seen:
            try:
                if not stream.read_frames(False):
                    return
            except OSError:
                return
        seen = current


def serve_sync(stream, handle):
    """Runs `handle(rid, payload)` for each request until EOF or SIGTERM (`stream.stopping`)."""
    threading.Thread(target=watch, args=(stream,), name="gatehouse-watch", daemon=True).start()
    pending = stream.pending
    popleft = pending.popleft
    # acquire()/release() in try/finally rather than `with`: the same, for less.
    acquire = stream.lock.acquire
    release = stream.lock.release
    lock = stream.lock
    cancelled = stream.cancelled
    read_frames = stream.read_frames
    held_since = took = 0.0
    # One clock read per request, not two (a read is not cheap on a VM): a request took the
    # time since the previous read, which is taken again after each wait for frames.
    last = perf_counter()
    while not stream.stopping:
        acquire()
        try:
            if pending:
                rid, payload = popleft()
                stream.current = rid
            else:
                rid = stream.current = None
        finally:
            release()
        if rid is None:
            stream.busy = False  # idle: SIGTERM may end the process at once
            if not read_frames(True):
                return
            last = perf_counter()
            continue
        stream.busy = True
        if pending and took < QUICK_SECONDS and stream.held is None:
            stream.held = []
            held_since = last
        handle(rid, payload)
        now = perf_counter()
        took = now - last
        last = now
        if stream.held is not None and (not pending or took >= QUICK_SECONDS or now - held_since >= HOLD_SECONDS):
            stream.flush()
        if cancelled:
            with lock:
                cancelled.discard(rid)
    # Leaving (SIGTERM): hand back what was queued here so the front sends it elsewhere, say so,
    # and hand back what comes until the front, having taken it all back, closes the stream.
    stream.flush()
    stream.send(pack_header(LEAVING, 0, 0))
    while True:
        with lock:
            while pending:
                stream.send(pack_header(REVOKED, popleft()[0], 0))
        if not read_frames(True):
            return
