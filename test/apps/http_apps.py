"""WSGI apps for test/http-connections.test.ts and test/http-bodies.test.ts (stdlib only)."""
import json
import time
from urllib.parse import parse_qs


def app(environ, start_response):
    """Echoes the request as JSON.

    /slow?ms=N sleeps N ms first; /stream answers in several chunks with no
    Content-Length (so the front must pick the framing).
    """
    path = environ["PATH_INFO"]
    query = parse_qs(environ["QUERY_STRING"])
    if path == "/slow":
        time.sleep(int(query.get("ms", ["500"])[0]) / 1000.0)
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([b"part1-", b"part2-", b"part3"])
    body = environ["wsgi.input"].read()
    data = {
        "method": environ["REQUEST_METHOD"],
        "path": path,
        "query": environ["QUERY_STRING"],
        "protocol": environ["SERVER_PROTOCOL"],
        "content_length": environ.get("CONTENT_LENGTH"),
        "transfer_encoding": environ.get("HTTP_TRANSFER_ENCODING"),
        "remote_port": environ.get("REMOTE_PORT"),
        "body": body.decode("latin-1"),
        "time": time.time(),
    }
    out = json.dumps(data).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
    return [out]
