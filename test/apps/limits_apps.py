"""WSGI app for test/limits-*.test.ts and test/access-log.test.ts (stdlib only)."""
import json
import sys
import time
from urllib.parse import parse_qs

served = 0


def app(environ, start_response):
    """Answers JSON: the path, the body's length and how many requests this worker has seen.

    /slow?ms=N sleeps N ms first; /log writes a line to wsgi.errors and one to
    stdout; every answer carries an X-Answer response header.
    """
    global served
    served += 1
    path = environ["PATH_INFO"]
    query = parse_qs(environ["QUERY_STRING"])
    if path == "/slow":
        time.sleep(int(query.get("ms", ["500"])[0]) / 1000.0)
    if path == "/log":
        environ["wsgi.errors"].write("app wrote to wsgi.errors\n")
        # Python logging's basicConfig format and the warnings module's: labelled by the level they name.
        sys.stderr.write("WARNING:django.request:Not Found: /log\n")
        sys.stderr.write("DEBUG:app:a debug line\n")
        sys.stderr.write("/srv/app.py:3: DeprecationWarning: old call\n")
        sys.stderr.flush()
        print("app printed to stdout")
        sys.stdout.flush()
    body = environ["wsgi.input"].read()
    out = json.dumps({"path": path, "body_length": len(body), "served": served}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("X-Answer", "forty-two"), ("Content-Length", str(len(out)))])
    return [out]
