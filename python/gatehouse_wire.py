"""The worker's half of the front <-> worker wire (src/wire/frames.ts documents it).

Every frame is a 9-byte header `<BII` (type, request id, payload length)
followed by the payload. Strings travel as latin-1, NUL-separated: that is
what PEP 3333 "native strings" are, and decoding them costs one
`bytes.decode` and one `str.split`.
"""

import collections
import select
import struct
import threading

# Frame types, front -> worker (REQ_STREAM: a REQ whose body follows as REQ_BODY frames, then REQ_END)
REQ = 1
CANCEL = 2
REVOKE = 3
FORK = 4
WS_OPEN = 5
REQ_STREAM = 6
REQ_BODY = 7
REQ_END = 8
# Frame types, worker -> front
READY = 10
BOOT_ERROR = 11
RESPONSE = 12
START = 13
BODY = 14
FILE = 15
END = 16
ABORT = 17
REVOKED = 18
EXITED = 19
HEARTBEAT = 20
WS_ACCEPT = 21
START_TRAILERS = 27  # a START whose TRAILERS frames follow the body
TRAILERS = 28
LEAVING = 29  # id 0: leaving on SIGTERM; every request this worker started is answered
# Frame types, both ways (an open WebSocket)
WS_TEXT = 22
WS_BINARY = 23
WS_CLOSE = 24
WS_PAUSE = 25
WS_RESUME = 26

# Bytes asked for per read. Under glibc's mmap threshold (128 KiB): a bigger
# buffer is mapped and unmapped on every recv(), which costs more than the
# request itself.
RECV_SIZE = 65536

HEADER = struct.Struct("<BII")
HEADER_SIZE = HEADER.size
U32 = struct.Struct("<I")
pack_header = HEADER.pack
# A RESPONSE frame's header and its payload's first field (the head's length) in one pack.
pack_response = struct.Struct("<BIII").pack
unpack_header = HEADER.unpack_from
unpack_u32 = U32.unpack_from


def encode_head(status, headers, length=None):
    """Status and headers as the latin-1 NUL-separated block the front expects; `length`: a
    Content-Length the server adds (the app's list is never added to: it may use it again)."""
    parts = [status]
    for name, value in headers:
        parts.append(name)
        parts.append(value)
    if length is not None:
        parts.append("Content-Length")
        parts.append(length)
    return "\0".join(parts).encode("latin-1")


class Stream:
    """The worker's end of its stream to the front: reads and files frames, sends frames.

    Requests received and not started wait in `pending`; `current` (sync mode)
    and `running` (thread mode) are the ones started, so CANCEL and REVOKE can
    tell a queued request from a running one. `lock` guards those four and
    `cancelled`; `read_lock` makes sure only one thread reads at a time.
    """

    def __init__(self, sock):
        self.sock = sock
        self.pending = collections.deque()  # (rid, payload) received, not started
        self.cancelled = set()
        self.parts = []  # the start of a frame not yet whole: bytes objects
        self.have = 0  # their total length
        self.need = 0  # the length that makes it whole (its header's, or a header's)
        self.lock = threading.Lock()  # pending, current, running, cancelled
        self.read_lock = threading.Lock()
        self.send_lock = threading.Lock()
        self.current = None  # id of the request the main thread is running (sync mode)
        self.running = set()  # ids of the requests the threads are running (thread mode)
        self.stopping = False
        self.busy = False
        self.held = None  # whole responses kept to be sent together (sync mode), or None

    def send(self, data):
        with self.send_lock:
            self.sock.sendall(data)

    def send_now(self, data):
        """send() from a signal handler: False, having sent nothing, while a send is under way
        (perhaps this very thread's, interrupted halfway through a frame), or if it fails."""
        if not self.send_lock.acquire(blocking=False):
            return False
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False
        finally:
            self.send_lock.release()

    def respond(self, data):
        """Sends a whole response, or keeps it for flush() while responses are held."""
        # Once per request: acquire()/release() cost less than `with`.
        self.send_lock.acquire()
        try:
            if self.held is None:
                self.sock.sendall(data)
            else:
                self.held.append(data)
        finally:
            self.send_lock.release()

    def flush(self):
        """Sends the held responses in one write, and holds no more."""
        with self.send_lock:
            held, self.held = self.held, None
            if held:
                self.sock.sendall(b"".join(held))

    def read_frames(self, block):
        """Reads what the stream has and files the frames; False at EOF."""
        with self.read_lock:
            if block:
                if self.pending:
                    return True  # the watcher filed some while we were not looking
            elif not select.select((self.sock,), (), (), 0)[0]:
                return True
            data = self.sock.recv(RECV_SIZE)
            if not data:
                return False
            if self.parts:
                # A frame bigger than one read: its pieces are joined once, when it is whole.
                self.parts.append(data)
                self.have += len(data)
                if self.have < self.need:
                    return True
                data = b"".join(self.parts)
                self.parts = []
            pos, size = 0, len(data)
            with self.lock:
                while size - pos >= HEADER_SIZE:
                    kind, rid, length = unpack_header(data, pos)
                    end = pos + HEADER_SIZE + length
                    if end > size:
                        break
                    if kind == REQ:
                        self.pending.append((rid, data[pos + HEADER_SIZE : end]))
                    elif kind == CANCEL or kind == REVOKE:
                        self.take_back(kind, rid)
                    pos = end
            if pos < size:
                rest = data[pos:]
                self.parts = [rest]
                self.have = len(rest)
                self.need = HEADER_SIZE + unpack_header(rest, 0)[2] if len(rest) >= HEADER_SIZE else HEADER_SIZE
            return True

    def take_back(self, kind, rid):
        """CANCEL or REVOKE: a request not yet started is dropped and answered here."""
        for item in self.pending:
            if item[0] == rid:
                self.pending.remove(item)
                self.send(pack_header(REVOKED if kind == REVOKE else END, rid, 0))
                return
        if kind == CANCEL and (rid == self.current or rid in self.running):
            self.cancelled.add(rid)  # running: the request stops at its next chunk
