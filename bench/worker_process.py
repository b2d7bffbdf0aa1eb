"""The whole worker, for bench/worker_cost.py's second measurement (its docstring says what is
timed and why): python/gatehouse_worker.py started as the front starts it and driven with REQ
frames on a real stream, its CPU time read from /proc; and the pacer, which gives the bare app
call the worker's rhythm of blocking and waking up.

Importing this module puts python/ on sys.path (gatehouse_wire, gatehouse_wsgi), as worker_cost.py
needs it.
"""

import json
import os
import socket
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "python"))

import gatehouse_wire as wire  # noqa: E402  (needs the sys.path line above)

WORKER = os.path.join(ROOT, "python", "gatehouse_worker.py")
# The most requests the front hands a busy sync worker at once (src/pool/worker-pool.ts).
PIPELINE_DEPTH = 16


def thread_cpu_ns(pid):
    """CPU time of all of a process's threads so far, in ns (/proc/PID/task/*/schedstat)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that just ended
    return total


class WorkerProcess:
    """gatehouse_worker.py started as the front starts it: settings as JSON, its stream on fd 3."""

    def __init__(self, app_spec, settings=None, script=WORKER):
        self.sock, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # dup() first: POSIX_SPAWN_DUP2 from fd 3 to fd 3 would leave it close-on-exec.
        src = os.dup(child.fileno())
        argv = [sys.executable, script, json.dumps(dict(settings or {}, app=app_spec))]
        try:
            self.pid = os.posix_spawn(sys.executable, argv, os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, src, 3)])
        finally:
            os.close(src)
            child.close()
        self.buf = b""
        self.nap = 20e-6
        kind, _rid, payload = self.read_frame()
        if kind != wire.READY:
            raise SystemExit("worker_cost: the worker did not boot: %s" % payload.decode("utf-8", "replace"))

    def read_frame(self):
        while True:
            if len(self.buf) >= wire.HEADER_SIZE:
                kind, rid, length = wire.unpack_header(self.buf, 0)
                end = wire.HEADER_SIZE + length
                if len(self.buf) >= end:
                    payload = self.buf[wire.HEADER_SIZE : end]
                    self.buf = self.buf[end:]
                    return kind, rid, payload
            data = self.sock.recv(1 << 20)
            if not data:
                raise SystemExit("worker_cost: the worker closed its stream")
            self.buf += data

    def drive(self, payload, n, depth):
        """Sends n REQ frames, `depth` at a time in one write (as the front tops up a busy
        worker), and reads the answers; returns when all n are answered.

        With depth > 1 this process sleeps while a batch is worked on, for about as long as
        the last batches took, so the worker runs alone, as the bare app call does in this
        process (a reader woken by every answer would run beside it, on the other CPU or
        hyperthread, and slow it down). With depth 1 it waits in recv() for each answer.
        """
        frames = [wire.pack_header(wire.REQ, i + 1, len(payload)) + payload for i in range(1024)]
        sock = self.sock
        unpack = wire.unpack_header
        size = wire.HEADER_SIZE
        enders = (wire.RESPONSE, wire.END, wire.ABORT)
        sleep = time.sleep
        done = 0
        buf = self.buf
        nap = self.nap  # seconds per request
        while done < n:
            k = min(depth, n - done)
            sock.sendall(b"".join(frames[(done + i) & 1023] for i in range(k)))
            if depth > 1:
                sleep(nap * k)
            first = True
            answered = 0
            while answered < k:
                data = sock.recv(1 << 20)
                if not data:
                    raise SystemExit("worker_cost: the worker closed its stream")
                buf = buf + data if buf else data
                pos, end = 0, len(buf)
                while end - pos >= size:
                    kind, _rid, length = unpack(buf, pos)
                    if end - pos < size + length:
                        break
                    if kind in enders:
                        answered += 1
                    pos += size + length
                buf = buf[pos:]
                if first and depth > 1:
                    # Slept long enough: try a little less; too little: rather more.
                    nap = max(nap * 0.95, 1e-6) if answered == k else nap * 1.2
                first = False
            done += k
        self.buf = buf
        self.nap = nap

    def cpu_us_per_request(self, payload, n, depth):
        before = thread_cpu_ns(self.pid)
        self.drive(payload, n, depth)
        return (thread_cpu_ns(self.pid) - before) / n / 1000.0

    def close(self):
        self.sock.close()  # an idle worker leaves when its stream closes
        os.waitpid(self.pid, 0)


class Pacer:
    """A child process that answers each byte sent to it with one byte, after sleeping for
    the driver's current nap: blocking on it costs this process what blocking on the
    front costs the worker (a send, a blocking recv, a wake-up by another process)."""

    def __init__(self):
        self.sock, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.pid = os.fork()
        if self.pid == 0:
            self.sock.close()
            try:
                while True:
                    nap = child.recv(8)
                    if len(nap) < 8:
                        break
                    seconds = struct.unpack("d", nap)[0]
                    if seconds > 0:
                        time.sleep(seconds)
                    child.sendall(b"x")
            finally:
                os._exit(0)
        child.close()

    def wait(self, seconds):
        self.sock.sendall(struct.pack("d", seconds))
        self.sock.recv(1)

    def close(self):
        self.sock.close()
        os.waitpid(self.pid, 0)


def paced(app_alone, pacer, worker, depth):
    """The bare app call in the worker's rhythm: `depth` calls, then a blocking wait as long as
    the driver lets the worker wait (its nap at depth > 1; a round trip at depth 1)."""

    def run(n):
        for start in range(0, n, depth):
            app_alone(min(depth, n - start))
            pacer.wait(worker.nap * depth if depth > 1 else 0)

    return run
