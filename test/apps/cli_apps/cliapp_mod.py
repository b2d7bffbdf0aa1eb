"""Apps for test/cli.test.ts's APP forms, imported as a module (needs --chdir or sys.path)."""
import json
import os
import sys


def _answer(form, **extra):
    def app(environ, start_response):
        data = {"form": form, "prefix": sys.prefix, "cwd": os.getcwd(), "module": __name__}
        data.update(extra)
        body = json.dumps(data).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return app


application = _answer("module:application")
other = _answer("module:other")


def make_app():
    return _answer("module:factory()")


def make_app_with(greeting, n=1):
    return _answer("module:factory(args)", greeting=greeting, n=n)
