"""An app loaded by file path (test/cli.test.ts): file.py serves `application`, file.py:other picks another."""
import json


def _answer(form):
    def app(environ, start_response):
        body = json.dumps({"form": form, "module": __name__}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return app


application = _answer("file.py")
other = _answer("file.py:other")
