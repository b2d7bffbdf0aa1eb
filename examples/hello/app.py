"""The example app `npm start` serves: a plain WSGI callable, no framework."""


def application(environ, start_response):
    body = b"Hello from gatehouse!\n"
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [body]
