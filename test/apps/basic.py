"""Small WSGI apps for the integration tests; pick one with basic.py:NAME."""
import json


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello\n"]


def echo_environ(environ, start_response):
    """Returns the str-valued environ keys and the body as JSON."""
    body = environ["wsgi.input"].read()
    data = {k: v for k, v in environ.items() if isinstance(v, str)}
    data["body"] = body.decode("latin-1")
    data["wsgi.multithread"] = environ["wsgi.multithread"]
    data["wsgi.multiprocess"] = environ["wsgi.multiprocess"]
    data["wsgi.input_terminated"] = environ.get("wsgi.input_terminated")
    out = json.dumps(data).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [out]


def whoami(environ, start_response):
    """Which app (APP_LABEL from its env), process and user answered, and where it was mounted."""
    import os

    data = {
        "label": os.environ.get("APP_LABEL"),
        "pid": os.getpid(),
        "uid": os.getuid(),
        "script_name": environ["SCRIPT_NAME"],
        "path_info": environ["PATH_INFO"],
        "query": environ["QUERY_STRING"],
        "host": environ.get("HTTP_HOST"),
        "body_length": len(environ["wsgi.input"].read()),
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(data).encode()]


# The heads of test/fast-path-connections.test.ts's "app heads byte for byte" test, by path.
HEADS = {
    "/json": ("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")], b"{}"),
    "/dated": ("200 OK", [("Date", "Thu, 01 Jan 1970 00:00:00 GMT"), ("Content-Length", "2")], b"ok"),
    "/empty": ("204 No Content", [], b""),
    "/latin": ("299 Fine Anyway", [("X-Name", "caf\xe9"), ("X-Empty", ""), ("Content-Length", "1")], b"x"),
    "/unsized": ("200 OK", [("Content-Type", "text/plain")], b"abc"),
}


def response_heads(environ, start_response):
    status, headers, body = HEADS[environ["PATH_INFO"]]
    start_response(status, list(headers))
    return [body]
