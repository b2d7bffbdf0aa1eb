"""gatehouse worker: runs one WSGI (PEP 3333) application for the gatehouse front.

Standard library only, Python >= 3.8. The front starts this file with one JSON
argument (the worker settings) and a bidirectional stream on fd 3. Everything
HTTP (parsing, limits, buffering the request body, writing to slow clients) is
done by the front; this process only builds `environ`, calls the application
and sends the response back as frames.

    gatehouse_worker.py   this entry point: start-up, --preload template, signals
    gatehouse_app.py      loading the app; what PEP 3333 asks around it
    gatehouse_wire.py     the frames and the stream that carries them
    gatehouse_wsgi.py     one request: environ, start_response, response frames
    gatehouse_sync.py     sync mode: one request at a time on the main thread
    gatehouse_threads.py  thread mode: N requests at once
    gatehouse_asgi.py     ASGI mode: an asyncio loop, many requests at once
"""

import faulthandler
import json
import os
import select
import signal
import socket
import sys
import traceback

from gatehouse_app import AppError, detect_interface, load_app, release_free_memory
from gatehouse_sync import serve_sync
from gatehouse_threads import serve_threads
from gatehouse_wire import BOOT_ERROR, EXITED, FORK, HEADER_SIZE, LEAVING, READY, Stream, pack_header, unpack_header
from gatehouse_wsgi import Handler


def die_with_parent():
    """Ask Linux to SIGKILL this process when the front dies, even if SIGKILLed."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass  # not Linux: the closed stream still ends the worker when it is idle


def set_scheduling(policy):
    """--worker-scheduling batch: SCHED_BATCH, so that a worker woken by a request waits for the
    running process's turn to end instead of preempting it (often the front, in the middle of
    answering other clients); its share of CPU stays the same. Threads and forked children inherit it.
    And a session of its own (own_session)."""
    if policy != "batch":
        return
    own_session()
    if not hasattr(os, "sched_setscheduler"):
        return
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except OSError as exc:
        sys.stderr.write("worker_scheduling = batch: could not set SCHED_BATCH (%s); the worker runs as any process\n" % exc)


def own_session():
    """Where Linux groups processes by session for CPU shares (autogroup, on by default in many
    kernels), the front and its workers in one session would share one process's weight, and the
    front would lose its core to any other program (a client on the same machine) far more often:
    each worker leaves for a session of its own, and the front keeps the one it was started in.
    The workers still die with the front (PDEATHSIG), and ignored the terminal's Ctrl-C already."""
    try:
        os.setsid()
    except OSError:
        pass  # already a group leader (not as gatehouse starts its workers)


def serve(app, sock, settings, token=0):
    """Runs a worker on `sock` until the front closes it (or SIGTERM)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the front decides (Ctrl-C reaches a worker still in its session)
    if settings["interface"] == "asgi":
        from gatehouse_asgi import serve_asgi

        serve_asgi(app, sock, settings, token)
        return
    stream = Stream(sock)
    handle = Handler(app, stream, settings).handle

    def stop(signum, frame):
        # Busy: finish the request in hand, then leave (the loop says LEAVING). Idle: say LEAVING
        # now; the front takes back what it sent meanwhile, then closes the stream, and the loop
        # ends. If it cannot be said now, leave at once, as before.
        stream.stopping = True
        if not stream.busy and not stream.running and not stream.send_now(pack_header(LEAVING, 0, 0)):
            sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    info = json.dumps({"pid": os.getpid(), "python": sys.version.split()[0], "interface": "wsgi"}).encode()
    release_free_memory()
    sock.sendall(pack_header(READY, token, len(info)) + info)
    threads = settings.get("threads", 1)
    try:
        if threads > 1:
            serve_threads(stream, handle, threads)
        else:
            serve_sync(stream, handle)
    except (ConnectionError, OSError):
        pass  # the front went away


def serve_template(app, sock, settings):
    """--preload: the app is imported once here; workers are forked from this process.

    The front sends FORK with a token; the child connects to the front's
    private unix socket and says READY with that token. Children that exit
    are reported to the front as EXITED (id: pid; payload: exit status).
    """
    release_free_memory()  # before the children share its pages
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
                if settings.get("worker_scheduling") == "batch":
                    own_session()  # the template's is not shared
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
    # The front's signals (reload, reopen the logs, a worker more or less) are for the front: sent to
    # every process (`pkill -HUP -f gatehouse`, `systemctl kill -s HUP`), they must not end a worker,
    # or stop it (TTIN and TTOU would), mid-request.
    for name in ("SIGHUP", "SIGUSR1", "SIGUSR2", "SIGTTIN", "SIGTTOU"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    # A worker hung in a request or in the app's import gets SIGABRT: the operator sees where it
    # hung (and where a C extension crashed).
    faulthandler.enable(file=sys.stderr, all_threads=True)
    set_scheduling(settings.get("worker_scheduling"))
    # gunicorn's order: --pythonpath entries, then the working directory (--chdir).
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for path in reversed(settings.get("pythonpath", [])):
        sys.path.insert(0, path)
    try:
        app = load_app(settings["app"])
        settings["interface"] = detect_interface(app, settings.get("interface", "auto"))
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
