"""The cache suite's app: /1k and /64k answer that many bytes, cacheable for an hour by any cache."""

BODIES = {"/1k": b"x" * 1024, "/64k": b"x" * 65536}


def app(environ, start_response):
    body = BODIES.get(environ["PATH_INFO"], b"Hello, World!")
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Cache-Control", "public, max-age=3600"), ("Content-Length", str(len(body)))])
    return [body]
