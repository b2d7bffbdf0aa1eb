"""One WSGI request: build `environ` from a REQ payload, call the application,
send the response back as frames (RESPONSE, or START, BODY/FILE..., END)."""

import io
import os
import stat
import sys
import traceback

from gatehouse_app import AppError, Cancelled, ErrorStream, FileWrapper, bodiless, check_headers, with_reason
from gatehouse_wire import (
    ABORT,
    BODY,
    END,
    FILE,
    RESPONSE,
    START,
    encode_head,
    pack_header,
    pack_response,
    unpack_u32,
)

BytesIO = io.BytesIO

# Bodies of a declared length up to this size are sent in one frame.
COLLECT_LIMIT = 65536


class Handler:
    """Runs requests for one app; frames go out through `stream.send`.

    `stream.cancelled` holds the ids of running requests whose client went
    away: the response stops at its next chunk.
    """

    def __init__(self, app, stream, settings):
        self.app = app
        self.send = stream.send
        self.respond = stream.respond
        self.cancelled = stream.cancelled
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

    def build_environ(self, payload):
        elen = unpack_u32(payload, 0)[0]
        parts = payload[4 : 4 + elen].decode("latin-1").split("\0")
        environ = self.base_environ.copy()
        it = iter(parts)
        environ.update(zip(it, it))
        body_file = environ.pop("gatehouse.body_file", None)
        if body_file is not None:
            environ["wsgi.input"] = open(body_file, "rb")
        elif len(payload) > 4 + elen:
            environ["wsgi.input"] = BytesIO(payload[4 + elen :])
        else:
            environ["wsgi.input"] = BytesIO()  # cheaper than BytesIO(b"")
        return environ

    def handle(self, rid, payload):
        try:
            environ = self.build_environ(payload)
        except OSError as exc:
            self.body_lost(rid, payload, exc)
            return
        # Middleware (wsgiref.validate, for one) may replace wsgi.input with its own
        # object, which is not ours to close: close what we opened.
        body = environ["wsgi.input"]
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
            state[2], state[1] = check_headers(status, headers)
            state[0] = status if len(status) > 3 else with_reason(status)
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
            try:
                body.close()
            except Exception as exc:
                # The response is out; a worker that died here would take the next requests with it.
                self.log_exception(environ, exc, "while closing wsgi.input")

    def body_lost(self, rid, payload, exc):
        """The request body's temp file cannot be opened: the front removed it (its
        client went away) or the worker may not read it. That request fails alone."""
        elen = unpack_u32(payload, 0)[0]
        it = iter(payload[4 : 4 + elen].decode("latin-1").split("\0"))
        self.app_failed(rid, [None, None, None, False, 0, False], dict(zip(it, it)), exc)

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
        length = len(body)
        declared = state[2]
        added = None
        if declared is None:
            if not bodiless(state[0]):
                added = str(length)
        elif declared != length and not state[5]:
            self.send_chunk(rid, state, body)
            self.finish(rid, state)
            return
        head = encode_head(state[0], state[1], added)
        self.respond(b"".join((pack_response(RESPONSE, rid, 4 + len(head) + length, len(head)), head, body)))

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
            head = encode_head(state[0], state[1], "0" if state[2] is None and not bodiless(state[0]) else None)
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
        if declared is not None and declared > length:
            return False  # iterate it: the short body then aborts the connection
        head = encode_head(state[0], state[1], None if declared is not None else str(length))
        if declared is not None:
            length = declared
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
        self.respond(pack_response(RESPONSE, rid, 4 + len(head) + len(body), len(head)) + head + body)

    def log_exception(self, environ, exc, where):
        request = "%s %s" % (environ.get("REQUEST_METHOD", "?"), environ.get("RAW_URI", "?"))
        if isinstance(exc, AppError):
            sys.stderr.write("Error handling request %s: %s\n" % (request, exc))
        else:
            sys.stderr.write("Error handling request %s %s\n" % (request, where))
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        sys.stderr.flush()
