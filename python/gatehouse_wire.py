"""The worker's half of the front <-> worker wire (src/wire/frames.ts documents it).

Every frame is a 9-byte header `<BII` (type, request id, payload length)
followed by the payload. Strings travel as latin-1, NUL-separated: that is
what PEP 3333 "native strings" are, and decoding them costs one
`bytes.decode` and one `str.split`.
"""

import struct

# Frame types, front -> worker
REQ = 1
CANCEL = 2
REVOKE = 3
FORK = 4
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

HEADER = struct.Struct("<BII")
HEADER_SIZE = HEADER.size
U32 = struct.Struct("<I")
pack_header = HEADER.pack
unpack_header = HEADER.unpack_from
unpack_u32 = U32.unpack_from


def encode_head(status, headers):
    """Status and headers as the latin-1 NUL-separated block the front expects."""
    parts = [status]
    for name, value in headers:
        parts.append(name)
        parts.append(value)
    return "\0".join(parts).encode("latin-1")


