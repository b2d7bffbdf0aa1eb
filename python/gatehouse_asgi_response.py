"""What an ASGI HTTP request and a WebSocket share: the scope read from the
front's payload, and the response written as frames (an HTTP request's, or a
WebSocket's denial).

The REQ (or WS_OPEN) payload's block is latin-1 NUL-separated, built by
src/asgi/scope.ts: method, scheme, http_version, root_path, path below it
(both percent-decoded bytes), raw path, query string, client host, client
port, server host, server port, then header names (lower case) and values,
and last the temp file holding the body ('' when the body is inline, after
the block; always '' for an ASGI app: the front streams what it would have
spilled).
"""

import http
import sys
import traceback

from gatehouse_app import AppError, bodiless, check_headers
from gatehouse_wire import ABORT, BODY, END, RESPONSE, START, START_TRAILERS, encode_head, pack_header, pack_response, unpack_u32

REASONS = {s.value: s.phrase for s in http.HTTPStatus}
ASGI = {"version": "3.0", "spec_version": "2.3"}
EXTENSIONS = {"http.response.pathsend": {}}
# Offered when the client said it takes trailers (TE: trailers).
EXTENSIONS_TRAILERS = {"http.response.pathsend": {}, "http.response.trailers": {}}
HTTP_VERSIONS = {b"1.0": "1.0", b"1.1": "1.1", b"2.0": "2"}
# What start() made of a status and headers an app sends again and again (most send the same few):
# the status line, the checked headers, the declared length and the encoded head.
STARTED = {}
STARTED_LIMIT = 256


def routes_below_mount(setting):
    """Whether scope["path"] is the part below the route's mount (asgi_path):
    auto says so for an app on a Starlette before 0.33, whose router matches
    scope["path"] alone (later ones, and Django, take either form)."""
    if setting != "auto":
        return setting == "below-mount"
    version = getattr(sys.modules.get("starlette"), "__version__", "")
    try:
        return tuple(int(p) for p in version.split(".")[:2]) < (0, 33)
    except ValueError:
        return False


def read_scope(payload, state, below_mount=False):
    """A REQ or WS_OPEN payload: the HTTP scope and the inline body."""
    blen = unpack_u32(payload, 0)[0]
    f = payload[4 : 4 + blen].split(b"\0")
    it = iter(f[11:-1])
    headers = list(zip(it, it))
    client = (f[7].decode("latin-1"), int(f[8])) if f[7] else None
    server = (f[9].decode("latin-1"), int(f[10]) if f[10] else None) if f[9] else None  # a unix socket: (path, None)
    scope = {
        "type": "http",
        "asgi": ASGI,
        "http_version": HTTP_VERSIONS.get(f[2], "1.1"),
        "method": f[0].decode("latin-1"),
        "scheme": f[1].decode("latin-1"),
        "path": ((f[4] or b"/") if below_mount and f[3] else f[3] + f[4]).decode("utf-8", "replace"),
        "raw_path": f[5],
        "query_string": f[6],
        "root_path": f[3].decode("utf-8", "replace"),
        "headers": headers,
        "client": client,
        "server": server,
        "extensions": EXTENSIONS_TRAILERS if payload.find(b"\0te\0", 4, 4 + blen) >= 0 and takes_trailers(headers) else EXTENSIONS,
        "state": state.copy(),
    }
    return scope, payload[4 + blen :]


def takes_trailers(headers):
    for name, value in headers:
        if name == b"te" and b"trailers" in [v.strip().split(b";")[0].lower() for v in value.split(b",")]:
            return True
    return False


class ClientDisconnected(OSError):
    """send() after the client went away (what the ASGI spec asks servers to raise)."""


def plain(status, text):
    body = text.encode()
    head = encode_head(
        "%d %s" % (status, REASONS[status]),
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return head, body


class Responder:
    """What sends an HTTP response over the wire (an ASGI HTTP request, or a WebSocket's denial)."""

    __slots__ = ()
    trailing = 0  # HttpRequest's own: trailers follow the body

    def start(self, message):
        if self.status is not None:
            raise AppError("http.response.start sent twice")
        status = message["status"]
        raw = tuple(message.get("headers", ()))
        key = None
        if type(status) is int:
            try:
                key = (status, raw)
                known = STARTED.get(key)
            except TypeError:  # something unhashable in the headers: checked below
                key = known = None
            if known is not None:
                self.status, headers, self.declared, self.encoded = known
                self.headers = list(headers)
                return
        if type(status) is not int or not 100 <= status <= 599:
            raise AppError("the status must be an int from 100 to 599, got %r" % (status,))
        line = "%d %s" % (status, REASONS.get(status, ""))
        try:
            headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw]
        except (AttributeError, TypeError, ValueError):
            raise AppError("each header must be a pair of bytes (name, value), got %r" % (raw,)) from None
        # Hop-by-hop headers are dropped there, as a WSGI app's: the front owns the connection's framing.
        declared, headers = check_headers(line, headers)
        self.status = line
        self.headers = headers
        self.declared = declared
        # With its length declared, nothing is added to the head: its bytes are known now.
        self.encoded = None if declared is None else encode_head(line, headers)
        if key is not None:
            if len(STARTED) >= STARTED_LIMIT:
                STARTED.clear()
            STARTED[key] = (line, tuple(headers), declared, self.encoded)

    def body_part(self, body, more):
        if type(body) is not bytes:
            if not isinstance(body, (bytearray, memoryview)):
                raise AppError("http.response.body's body must be bytes, got %s" % type(body).__name__)
            body = bytes(body)
        declared = self.declared
        if declared is not None:
            sent = self.sent + len(body)
            if (sent > declared or (sent < declared and not more)) and not self.no_body():
                return self.off_length(body, more, sent)
            self.sent = sent
        self.write_part(body, more)

    def no_body(self):
        """A response whose declared length tells of a body it does not carry."""
        return bodiless(self.status) or self.scope.get("method") == "HEAD"

    def off_length(self, body, more, sent):
        """A body that does not keep to its Content-Length: bytes past it are dropped (they would be read as
        the connection's next answer), and a body that ends short cuts the connection (as a WSGI app's)."""
        declared = self.declared
        if sent > declared:
            if self.sent < declared:
                self.log("the app sent more than its Content-Length (%d); the rest was dropped" % declared)
            body = body[: declared - self.sent]
            self.sent = declared
            return self.write_part(body, more)
        self.log("response had Content-Length %d but the app sent %d bytes; connection aborted" % (declared, sent))
        self.sent = sent
        self.write_part(body, True)
        self.complete = True
        self.end(ABORT)
        self.wake()

    def write_part(self, body, more):
        send = self.worker.write
        rid = self.rid
        if not self.head_sent:
            self.head_sent = True
            if not more:
                # The whole response in one message: one frame, with its length.
                self.complete = self.ended = True
                if self.declared is None and not bodiless(self.status) and (body or self.scope.get("method") != "HEAD"):
                    self.headers.append(("Content-Length", str(len(body))))
                head = self.head_block()
                send(b"".join((pack_response(RESPONSE, rid, 4 + len(head) + len(body), len(head)), head, body)))
                self.wake()
                return
            head = self.head_block()
            send(pack_header(START_TRAILERS if self.trailing else START, rid, len(head)) + head)
        if body:
            send(pack_header(BODY, rid, len(body)) + body)
        if not more:
            self.complete = True
            self.end(END)
            self.wake()

    def head_block(self):
        """The head as the front reads it: made by start() when the app declared the length, else now
        (with the Content-Length added since)."""
        return self.encoded or encode_head(self.status, self.headers)

    def end(self, kind):
        """The frame that ends the request for the front: sent once."""
        if not self.ended:
            self.ended = True
            self.worker.write(pack_header(kind, self.rid, 0))

    def fail(self, status, text):
        """An answer from the worker when the app gave none; a response already started is cut."""
        if self.head_sent or self.ended:
            self.end(ABORT)
            return
        self.ended = True
        head, body = plain(status, text)
        self.worker.write(pack_response(RESPONSE, self.rid, 4 + len(head) + len(body), len(head)) + head + body)

    def label(self):
        scope = self.scope
        raw = scope["raw_path"] + (b"?" + scope["query_string"] if scope["query_string"] else b"")
        return "%s %s" % (scope.get("method", "WEBSOCKET"), raw.decode("latin-1"))

    def log(self, text):
        sys.stderr.write("Error handling request %s: %s\n" % (self.label(), text))
        sys.stderr.flush()

    def log_exception(self, exc):
        if isinstance(exc, AppError):
            return self.log(str(exc))
        sys.stderr.write("Error handling request %s\n" % self.label())
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        sys.stderr.flush()
