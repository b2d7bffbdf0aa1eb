"""The app of test/request-head-fuzz.test.ts (stdlib only): echoes what it received.

The answer is 200 with the echo (JSON, base64-encoded so that it is plain ASCII)
in an X-Echo response header, so it also reaches the client for HEAD: the
method, RAW_URI, PATH_INFO, QUERY_STRING, SERVER_PROTOCOL, every HTTP_* key,
CONTENT_TYPE, CONTENT_LENGTH and the body (latin-1).
"""
import base64
import json


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    data = {
        "method": environ["REQUEST_METHOD"],
        "target": environ.get("RAW_URI"),
        "path": environ["PATH_INFO"],
        "query": environ["QUERY_STRING"],
        "protocol": environ["SERVER_PROTOCOL"],
        "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
        "content_type": environ.get("CONTENT_TYPE"),
        "content_length": environ.get("CONTENT_LENGTH"),
        "body": body.decode("latin-1"),
    }
    echo = base64.b64encode(json.dumps(data, sort_keys=True).encode()).decode("ascii")
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", "0"), ("X-Echo", echo)])
    return [b""]
