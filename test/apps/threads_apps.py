"""Apps for the thread-mode and --user/--group tests (test/threads.test.ts). Stdlib only.

`app` routes on PATH_INFO:

  /env            JSON: wsgi.multithread, wsgi.multiprocess, pid
  /slow?s=SEC     counts itself as running (under a lock) for SEC seconds; says its pid
  /max            JSON: the most requests seen running at once since the last /reset
  /reset          forgets that maximum
  /sleep?s=SEC    sleeps, then says its pid
  /crash          the worker process dies at once (os._exit(1))
  /stream?mark=F  an endless streaming body; its close() writes F (then the test sees it)
  /big?mb=N       N MiB of body, streamed in 64 KiB chunks
  /whoami         JSON: uid, gid, supplementary groups, pid
  /body           (POST) JSON: length and sha256 of wsgi.input, read to the end
  anything else   says its pid
"""
import hashlib
import json
import os
import threading
import time
from urllib.parse import parse_qs

_lock = threading.Lock()
_running = 0
_max_running = 0


def _query(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _json(start_response, obj, status="200 OK"):
    body = json.dumps(obj).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _text(start_response, text):
    body = text.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class EndlessStream:
    """Yields a chunk every 20 ms forever; close() leaves a mark on disk."""

    def __init__(self, mark):
        self.mark = mark

    def __iter__(self):
        n = 0
        while True:
            n += 1
            yield ("chunk %d\n" % n).encode()
            time.sleep(0.02)

    def close(self):
        if self.mark:
            with open(self.mark, "w") as f:
                f.write("closed by pid %d thread %s\n" % (os.getpid(), threading.current_thread().name))


def app(environ, start_response):
    global _running, _max_running
    path = environ["PATH_INFO"]
    q = _query(environ)

    if path == "/env":
        return _json(
            start_response,
            {
                "multithread": environ["wsgi.multithread"],
                "multiprocess": environ["wsgi.multiprocess"],
                "pid": os.getpid(),
            },
        )

    if path == "/slow":
        with _lock:
            _running += 1
            if _running > _max_running:
                _max_running = _running
        try:
            time.sleep(float(q.get("s", "1")))
        finally:
            with _lock:
                _running -= 1
        return _text(start_response, "slow %d" % os.getpid())

    if path == "/max":
        with _lock:
            return _json(start_response, {"max": _max_running, "running": _running, "pid": os.getpid()})

    if path == "/reset":
        with _lock:
            _max_running = 0
        return _text(start_response, "reset %d" % os.getpid())

    if path == "/sleep":
        time.sleep(float(q.get("s", "1")))
        return _text(start_response, "slept %d" % os.getpid())

    if path == "/crash":
        os._exit(1)

    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return EndlessStream(q.get("mark"))

    if path == "/big":
        chunk = b"x" * 65536
        count = int(q.get("mb", "64")) * 16

        def big():
            for _ in range(count):
                yield chunk

        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(count * 65536))])
        return big()

    if path == "/whoami":
        return _json(
            start_response,
            {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "pid": os.getpid()},
        )

    if path == "/body":
        stream = environ["wsgi.input"]
        digest = hashlib.sha256()
        length = 0
        while True:
            data = stream.read(65536)
            if not data:
                break
            digest.update(data)
            length += len(data)
        return _json(start_response, {"length": length, "sha256": digest.hexdigest(), "uid": os.getuid()})

    return _text(start_response, "hello %d" % os.getpid())
