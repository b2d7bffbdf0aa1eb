"""gatehouse worker: runs one WSGI (PEP 3333) application for the gatehouse front.

Standard library only, Python >= 3.8. The front starts this file with one JSON
argument (the worker settings) and a bidirectional stream on fd 3. Everything
HTTP (parsing, limits, buffering the request body, writing to slow clients) is
done by the front; this process only builds `environ`, calls the application
and sends the response back as frames (gatehouse_wire.py).
"""

import collections
import faulthandler
import io
import json
import os
import queue
import signal
import select
import socket
import stat
import sys
import threading
import time
import traceback

from gatehouse_app import AppError, Cancelled, ErrorStream, FileWrapper, bodiless, check_headers, load_app
from gatehouse_wire import (
    ABORT,
    BODY,
    BOOT_ERROR,
    CANCEL,
    END,
    EXITED,
    FILE,
    FORK,
    HEADER_SIZE,
    READY,
    REQ,
    RESPONSE,
    REVOKE,
    REVOKED,
    START,
    U32,
    encode_head,
    pack_header,
    unpack_header,
    unpack_u32,
)

# Bodies of a declared length up to this size are sent in one frame.
COLLECT_LIMIT = 65536
# How often the watcher thread looks at the stream while a request runs (s).
WATCH_INTERVAL = 0.01


class Worker:
    def __init__(self, app, sock, settings):
        self.app = app
        self.sock = sock
        self.pending = collections.deque()  # (rid, payload) received, not started
        self.cancelled = set()
        self.inbuf = b""
        self.lock = threading.Lock()  # pending, current, cancelled
        self.read_lock = threading.Lock()
        self.send_lock = threading.Lock()
        self.current = None  # id of the request the main thread is running (sync mode)
        self.running = set()  # ids of the requests the threads are running (thread mode)
        self.stopping = False
        self.busy = False
        errors = ErrorStream(sys.stderr)
        self.base_environ = {
            "wsgi.version": (1, 0),
            "wsgi.errors": errors,
            "wsgi.multithread": settings.get("threads", 1) > 1,
            "wsgi.multiprocess": settings.get("multiprocess", True),
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
            "wsgi.input_terminated": True,
            "SERVER_SOFTWARE": settings.get("server_software", "gatehouse"),
        }

    # ---- reading frames -------------------------------------------------
    #
    # The main thread reads the stream itself whenever it has nothing to do:
    # no thread hand-off on the hot path. While it runs a long request, a
    # watcher thread polls the stream instead, so the front can still take
    # back requests that have not started (REVOKE) and stop the running one
    # (CANCEL). `read_lock` makes sure only one thread reads at a time.

    def send(self, data):
        with self.send_lock:
            self.sock.sendall(data)

    def read_frames(self, block):
        """Reads what the stream has and files the frames; False at EOF."""
        with self.read_lock:
            if block:
                if self.pending:
                    return True  # the watcher filed some while we were not looking
            elif not select.select((self.sock,), (), (), 0)[0]:
                return True
            data = self.sock.recv(262144)
            if not data:
                return False
            buf = self.inbuf + data if self.inbuf else data
            pos, size = 0, len(buf)
            with self.lock:
                while size - pos >= HEADER_SIZE:
                    kind, rid, length = unpack_header(buf, pos)
                    end = pos + HEADER_SIZE + length
                    if end > size:
                        break
                    if kind == REQ:
                        self.pending.append((rid, buf[pos + HEADER_SIZE : end]))
                    elif kind == CANCEL or kind == REVOKE:
                        self.take_back(kind, rid)
                    pos = end
            self.inbuf = buf[pos:]
            return True

    def take_back(self, kind, rid):
        """CANCEL or REVOKE: a request not yet started is dropped and answered here."""
        for item in self.pending:
            if item[0] == rid:
                self.pending.remove(item)
                self.send(pack_header(REVOKED if kind == REVOKE else END, rid, 0))
                return
        if kind == CANCEL and (rid == self.current or rid in self.running):
            self.cancelled.add(rid)  # running: the main thread stops at the next chunk

    def watch(self):
        """Polls the stream while the main thread is busy with one request for a while."""
        seen = None
        while True:
            time.sleep(WATCH_INTERVAL)
            current = self.current
            if current is not None and current == seen:
                try:
                    if not self.read_frames(False):
                        return
                except OSError:
                    return
            seen = current

    def serve_forever(self):
        threading.Thread(target=self.watch, name="gatehouse-watch", daemon=True).start()
        pending = self.pending
        while not self.stopping:
            with self.lock:
                if self.current is not None:
                    self.cancelled.discard(self.current)
                    self.current = None
                    self.busy = False
                if pending:
                    rid, payload = pending.popleft()
                    self.current = rid
                    self.busy = True
                else:
                    rid = None
            if rid is None:
                if not self.read_frames(True):
                    return
                continue
            self.handle(rid, payload)
        # Leaving (SIGTERM): hand back what was queued here so the front sends it elsewhere.
        with self.lock:
            while pending:
                self.send(pack_header(REVOKED, pending.popleft()[0], 0))

    def serve_threaded(self, threads):
        """Thread mode: the main thread reads, `threads` threads run requests.

        The front never sends more requests than there are threads, so each
        one starts at once and none waits behind another.
        """
        work = queue.SimpleQueue()

        def run():
            while True:
                item = work.get()
                if item is None:
                    return
                self.handle(item[0], item[1])
                with self.lock:
                    self.running.discard(item[0])
                    self.cancelled.discard(item[0])
                    last = self.stopping and not self.running
                if last:
                    # SIGTERM arrived while requests ran; the last one is answered.
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(0)

        pool = [threading.Thread(target=run, name="gatehouse-%d" % i, daemon=True) for i in range(threads)]
        for thread in pool:
            thread.start()
        pending = self.pending
        while self.read_frames(True):
            with self.lock:
                while pending:
                    item = pending.popleft()
                    self.running.add(item[0])
                    work.put(item)
        # The front closed the stream: finish what is running, then leave.
        for _ in pool:
            work.put(None)
        for thread in pool:
            thread.join()

    # ---- one request ----------------------------------------------------

    def build_environ(self, payload):
        elen = unpack_u32(payload, 0)[0]
        parts = payload[4 : 4 + elen].decode("latin-1").split("\0")
        environ = self.base_environ.copy()
        it = iter(parts)
        environ.update(zip(it, it))
        body_file = environ.pop("gatehouse.body_file", None)
        if body_file is not None:
            environ["wsgi.input"] = open(body_file, "rb")
        else:
            environ["wsgi.input"] = io.BytesIO(payload[4 + elen :])
        return environ

    def handle(self, rid, payload):
        environ = self.build_environ(payload)
        # [status, headers, declared Content-Length, head sent, bytes sent, HEAD request]
        state = [None, None, None, False, 0, environ["REQUEST_METHOD"] == "HEAD"]

        def write(data):
            if type(data) is not bytes:
                raise AppError("write() needs bytes, got %s" % type(data).__name__)
            if state[0] is None:
                raise AppError("write() called before start_response()")
            self.send_chunk(rid, state, data)

        def start_response(status, headers, exc_info=None):
            if exc_info:
                try:
                    if state[3]:
                        raise exc_info[1].with_traceback(exc_info[2])
                finally:
                    exc_info = None
            elif state[0] is not None:
                raise AppError("start_response() called twice without exc_info")
            state[2] = check_headers(status, headers)
            state[0] = status
            state[1] = headers
            return write

        result = None
        try:
            result = self.app(environ, start_response)
            if (
                type(result) is list
                and len(result) == 1
                and not state[3]
                and state[0] is not None
                and type(result[0]) is bytes
            ):
                self.send_whole(rid, state, result[0])
            elif type(result) is FileWrapper and self.send_file(rid, state, result):
                pass
            else:
                self.send_iterable(rid, state, result)
        except Cancelled:
            self.send(pack_header(END, rid, 0))
        except Exception as exc:
            self.app_failed(rid, state, environ, exc)
        finally:
            if result is not None and hasattr(result, "close"):
                try:
                    result.close()
                except Exception as exc:
                    self.log_exception(environ, exc, "in close() of the response iterable")
            environ["wsgi.input"].close()

    def send_iterable(self, rid, state, result):
        # A small body of declared length is collected and sent as one frame
        # (Flask and Django return iterators even for a few bytes); anything
        # else streams chunk by chunk, as the app yields it.
        declared = state[2]
        collected = [] if declared is not None and declared <= COLLECT_LIMIT and not state[3] else None
        size = 0
        for data in result:
            if type(data) is not bytes:
                raise AppError("the app yielded %s, not bytes" % type(data).__name__)
            if not data:
                continue
            if state[0] is None:
                raise AppError("the app returned a body before calling start_response()")
            if collected is not None:
                collected.append(data)
                size += len(data)
                if size <= declared:
                    continue
                data = b"".join(collected)  # more than declared: send_chunk cuts it
                collected = None
            self.send_chunk(rid, state, data)
            if rid in self.cancelled:
                raise Cancelled()
        if collected is not None:
            body = b"".join(collected)
            if size == declared or state[5]:
                return self.send_whole(rid, state, body)
            if body:
                self.send_chunk(rid, state, body)
        self.finish(rid, state)

    def send_whole(self, rid, state, body):
        """The common case: one bytes object; one frame carries the whole response."""
        headers = state[1]
        length = len(body)
        declared = state[2]
        if declared is None:
            if not bodiless(state[0]):
                headers.append(("Content-Length", str(length)))
        elif declared != length and not state[5]:
            self.send_chunk(rid, state, body)
            self.finish(rid, state)
            return
        head = encode_head(state[0], headers)
        self.send(
            pack_header(RESPONSE, rid, 4 + len(head) + length) + U32.pack(len(head)) + head + body
        )

    def send_chunk(self, rid, state, data):
        declared = state[2]
        if declared is not None and state[4] + len(data) > declared:
            # Never more than Content-Length on the wire: the rest would corrupt the connection.
            room = declared - state[4]
            if room <= 0:
                return
            sys.stderr.write(
                "the app sent more than its Content-Length (%d); the rest was dropped\n" % declared
            )
            data = data[:room]
        if not state[3]:
            head = encode_head(state[0], state[1])
            state[3] = True
            self.send(
                pack_header(START, rid, len(head)) + head + pack_header(BODY, rid, len(data)) + data
            )
        else:
            self.send(pack_header(BODY, rid, len(data)) + data)
        state[4] += len(data)

    def finish(self, rid, state):
        if state[0] is None:
            raise AppError("the app returned without calling start_response()")
        if not state[3]:
            if state[2] is None and not bodiless(state[0]):
                state[1].append(("Content-Length", "0"))
            head = encode_head(state[0], state[1])
            state[3] = True
            self.send(pack_header(START, rid, len(head)) + head + pack_header(END, rid, 0))
            return
        declared = state[2]
        if declared is not None and state[4] < declared and not state[5]:
            sys.stderr.write(
                "response had Content-Length %d but the app sent %d bytes; connection aborted\n"
                % (declared, state[4])
            )
            self.send(pack_header(ABORT, rid, 0))
            return
        self.send(pack_header(END, rid, 0))

    def send_file(self, rid, state, wrapper):
        """Hand a real file to the front to stream. False: iterate it instead."""
        filelike = wrapper.filelike
        if state[0] is None or state[3]:
            return False
        try:
            fd = filelike.fileno()
            st = os.fstat(fd)
            path = os.readlink("/proc/self/fd/%d" % fd)
            on_disk = os.stat(path)
            offset = filelike.tell()
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return False
        if (st.st_dev, st.st_ino) != (on_disk.st_dev, on_disk.st_ino) or not os.path.isabs(path):
            return False
        if not stat.S_ISREG(st.st_mode):
            return False
        length = max(0, st.st_size - offset)
        declared = state[2]
        if declared is not None:
            if declared > length:
                return False  # iterate it: the short body then aborts the connection
            length = declared
        else:
            state[1].append(("Content-Length", str(length)))
        head = encode_head(state[0], state[1])
        spec = ("%d\0%d\0%d\0%d\0" % (offset, length, st.st_dev, st.st_ino)).encode() + os.fsencode(path)
        state[3] = True
        state[4] = length
        self.send(
            pack_header(START, rid, len(head))
            + head
            + pack_header(FILE, rid, len(spec))
            + spec
            + pack_header(END, rid, 0)
        )
        return True

    def app_failed(self, rid, state, environ, exc):
        self.log_exception(environ, exc, "")
        if state[3]:
            # Headers are out: the client must see a truncated response, never a clean one.
            self.send(pack_header(ABORT, rid, 0))
            return
        body = b"Internal Server Error\n"
        head = encode_head(
            "500 Internal Server Error",
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
        )
        self.send(
            pack_header(RESPONSE, rid, 4 + len(head) + len(body)) + U32.pack(len(head)) + head + body
        )

    def log_exception(self, environ, exc, where):
        request = "%s %s" % (environ.get("REQUEST_METHOD", "?"), environ.get("RAW_URI", "?"))
        if isinstance(exc, AppError):
            sys.stderr.write("Error handling request %s: %s\n" % (request, exc))
        else:
            sys.stderr.write("Error handling request %s %s\n" % (request, where))
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        sys.stderr.flush()


def die_with_parent():
    """Ask Linux to SIGKILL this process when the front dies, even if SIGKILLed."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass  # not Linux: the closed stream still ends the worker when it is idle


def serve(app, sock, settings, token=0):
    """Runs a worker on `sock` until the front closes it (or SIGTERM)."""
    worker = Worker(app, sock, settings)

    def stop(signum, frame):
        # Idle: leave now. Busy: finish the request in hand, then leave.
        if not worker.busy and not worker.running:
            sys.exit(0)
        worker.stopping = True

    signal.signal(signal.SIGTERM, stop)
    # A hung worker gets SIGABRT: the operator sees where it hung (and where a C extension crashed).
    faulthandler.enable(file=sys.stderr, all_threads=True)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the front decides; Ctrl-C reaches both
    info = json.dumps({"pid": os.getpid(), "python": sys.version.split()[0]}).encode()
    sock.sendall(pack_header(READY, token, len(info)) + info)
    threads = settings.get("threads", 1)
    try:
        if threads > 1:
            worker.serve_threaded(threads)
        else:
            worker.serve_forever()
    except (ConnectionError, OSError):
        pass  # the front went away


def serve_template(app, sock, settings):
    """--preload: the app is imported once here; workers are forked from this process.

    The front sends FORK with a token; the child connects to the front's
    private unix socket and says READY with that token. Children that exit
    are reported to the front as EXITED (id: pid; payload: exit status).
    """
    sock.sendall(pack_header(READY, 0, 0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    buf = b""
    while True:
        ready = select.select((sock,), (), (), 0.2)[0]
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            text = str(code).encode()
            sock.sendall(pack_header(EXITED, pid, len(text)) + text)
        if not ready:
            continue
        data = sock.recv(65536)
        if not data:
            return  # the front is gone or done with us; children follow by PDEATHSIG
        buf += data
        while len(buf) >= HEADER_SIZE:
            kind, token, length = unpack_header(buf, 0)
            if len(buf) < HEADER_SIZE + length:
                break
            buf = buf[HEADER_SIZE + length :]
            if kind == FORK and os.fork() == 0:
                sock.close()
                die_with_parent()
                child = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                child.connect(settings["fork_socket"])
                try:
                    serve(app, child, settings, token)
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(0)


def main():
    settings = json.loads(sys.argv[1])
    parent = os.getppid()
    die_with_parent()
    if os.getppid() != parent:
        os._exit(1)
    sock = socket.socket(fileno=3)
    # gunicorn's order: --pythonpath entries, then the working directory (--chdir).
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for path in reversed(settings.get("pythonpath", [])):
        sys.path.insert(0, path)
    try:
        app = load_app(settings["app"])
    except BaseException as exc:
        if isinstance(exc, AppError):
            text = "%s\n" % exc
        else:
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        payload = text.encode("utf-8", "replace")
        sock.sendall(pack_header(BOOT_ERROR, 0, len(payload)) + payload)
        sys.exit(3)
    if settings.get("fork_socket"):
        serve_template(app, sock, settings)
    else:
        serve(app, sock, settings)


if __name__ == "__main__":
    main()
