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
