"""Thread mode (--threads N): the main thread reads the stream, N threads run requests."""

import queue
import threading

from gatehouse_wire import LEAVING, REVOKED, pack_header


def serve_threads(stream, handle, threads):
    """Runs `handle(rid, payload)` in `threads` threads until the front closes the stream.

    The front never sends more requests than there are threads, so each
    one starts at once and none waits behind another.
    """
    work = queue.SimpleQueue()

    def run():
        while True:
            item = work.get()
            if item is None:
                return
            handle(item[0], item[1])
            with stream.lock:
                stream.running.discard(item[0])
                stream.cancelled.discard(item[0])
                last = stream.stopping and not stream.running
            if last:
                # SIGTERM arrived while requests ran; the last one is answered, and none starts now:
                # the front takes back what it sends meanwhile, then closes the stream.
                stream.send(pack_header(LEAVING, 0, 0))

    pool = [threading.Thread(target=run, name="gatehouse-%d" % i, daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    pending = stream.pending
    while stream.read_frames(True):
        with stream.lock:
            while pending:
                item = pending.popleft()
                if stream.stopping:
                    stream.send(pack_header(REVOKED, item[0], 0))  # leaving: the front sends it elsewhere
                    continue
                stream.running.add(item[0])
                work.put(item)
    # The front closed the stream: finish what is running, then leave.
    for _ in pool:
        work.put(None)
    for thread in pool:
        thread.join()
