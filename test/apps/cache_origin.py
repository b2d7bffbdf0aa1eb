"""The origin behind the cache tests: counts its calls per path and answers
with the headers the query asks for.

Query: cc (Cache-Control), vary, etag, lm (Last-Modified), cookie (Set-Cookie),
tag (Cache-Tag), ce (Content-Encoding), loc (Location), status, sleep
(seconds), size (body bytes), chunked=1 (no Content-Length: the body in
parts of 256 bytes, so it goes out chunked). Header X-Drip: seconds between
those parts (not in the cache key: one client's answer is slow).
/__calls?path=P tells how often P was called (and how many of those were
answered 304); /__fail?on=1 makes every other request fail with 503 until
/__fail?on=0.
"""
import json
import threading
import time
from urllib.parse import parse_qs

lock = threading.Lock()
calls = {}
not_modified = {}
failing = [False]


def app(environ, start_response):
    path = environ["PATH_INFO"]
    q = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if path == "/__calls":
        with lock:
            data = {"calls": calls.get(q["path"], 0), "not_modified": not_modified.get(q["path"], 0)}
        start_response("200 OK", [("Content-Type", "application/json"), ("Cache-Control", "no-store")])
        return [json.dumps(data).encode()]
    if path == "/__fail":
        failing[0] = q.get("on") == "1"
        start_response("200 OK", [("Cache-Control", "no-store")])
        return [b"ok"]
    with lock:
        n = calls[path] = calls.get(path, 0) + 1
    if "sleep" in q:
        time.sleep(float(q["sleep"]))
    if failing[0]:
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
        return [b"origin down"]
    headers = [("Content-Type", "text/plain")]
    for param, name in (("cc", "Cache-Control"), ("vary", "Vary"), ("etag", "ETag"), ("lm", "Last-Modified"),
                        ("cookie", "Set-Cookie"), ("tag", "Cache-Tag"), ("ce", "Content-Encoding"), ("loc", "Location")):
        if param in q:
            headers.append((name, q[param]))
    etag = q.get("etag")
    if etag is not None and environ.get("HTTP_IF_NONE_MATCH") == etag:
        with lock:
            not_modified[path] = not_modified.get(path, 0) + 1
        start_response("304 Not Modified", headers)
        return [b""]
    body = "%s %s call %d lang=%s\n" % (environ["REQUEST_METHOD"], path, n, environ.get("HTTP_ACCEPT_LANGUAGE", ""))
    body = body.encode()
    if "size" in q:
        body = (body * (int(q["size"]) // len(body) + 1))[: int(q["size"])]
    status = q.get("status", "200")
    if q.get("chunked") == "1":
        start_response("%s X" % status, headers)
        parts = [body[i:i + 256] for i in range(0, len(body), 256)]
        pause = environ.get("HTTP_X_DRIP")
        return parts if pause is None else drip(parts, float(pause))
    start_response("%s X" % status, headers + [("Content-Length", str(len(body)))])
    return [body]


def drip(parts, pause):
    for i, part in enumerate(parts):
        if i > 0:
            time.sleep(pause)
        yield part
