"""Apps written for nginx's X-Accel-Redirect, for test/accel-redirect.test.ts.

`/send?to=VALUE` answers with `X-Accel-Redirect: VALUE` (and a body that must
never reach the client), as django-sendfile2's nginx backend does; `/stream`
the same as a streamed response; `/loop` redirects to itself; `/cached`
redirects (to `to`, too) with a Cache-Control a cache would store, its call
count in a cookie; `/echo` says what request it got; `/plain` is an ordinary answer.
"""

import json
from urllib.parse import parse_qs

CALLS = [0]

DOWNLOAD_HEADERS = [
    ("Content-Type", "application/pdf"),
    ("Content-Disposition", 'attachment; filename="report.pdf"'),
    ("Set-Cookie", "downloaded=1; Path=/"),
    ("X-App-Only", "dropped"),
]


def target(query):
    return parse_qs(query).get("to", ["/protected/report.pdf"])[0]


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    # By the last segment: behind an scgi or uwsgi route the whole path comes as PATH_INFO.
    name = "/" + path.rsplit("/", 1)[-1]
    query = environ.get("QUERY_STRING", "")
    if name == "/send":
        body = b"the app's own body, never sent"
        start_response("200 OK", DOWNLOAD_HEADERS + [("X-Accel-Redirect", target(query)), ("Content-Length", str(len(body)))])
        return [body]
    if name == "/stream":
        start_response("200 OK", DOWNLOAD_HEADERS + [("x-accel-redirect", target(query))])
        return (part for part in [b"streamed ", b"body"])
    if name == "/cached":
        CALLS[0] += 1
        headers = [("Cache-Control", "public, max-age=60"), ("Set-Cookie", "calls=%d" % CALLS[0])]
        start_response("200 OK", headers + [("X-Accel-Redirect", target(query))])
        return [b""]
    if name == "/loop":
        start_response("200 OK", [("X-Accel-Redirect", environ["SCRIPT_NAME"] + "/loop")])
        return [b""]
    if name == "/echo":
        environ["wsgi.input"].read()
        seen = {"method": environ["REQUEST_METHOD"], "path": path, "query": query, "length": environ.get("CONTENT_LENGTH", "")}
        body = json.dumps(seen).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    body = b"plain answer"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body))), ("X-Plain", "yes")])
    return [body]


async def asgi_app(scope, receive, send):
    if scope["type"] == "lifespan":
        return  # no lifespan: the server goes on without it
    while True:
        message = await receive()
        if not message.get("more_body", False):
            break
    to = target(scope["query_string"].decode("latin-1")).encode("latin-1")
    headers = [(n.lower().encode(), v.encode()) for n, v in DOWNLOAD_HEADERS]
    await send({"type": "http.response.start", "status": 200, "headers": headers + [(b"x-accel-redirect", to)]})
    await send({"type": "http.response.body", "body": b"asgi body, never sent"})
