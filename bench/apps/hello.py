"""Benchmark app: a plain WSGI hello world (no framework).

It sets Content-Length itself, as hello-world benchmarks usually do: without
it, an HTTP/1.1 keep-alive server must chunk the body (gunicorn does) or, like
uWSGI's --http11-socket, cannot delimit the response at all.
"""

BODY = b"Hello, World!"


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [BODY]


application = app
