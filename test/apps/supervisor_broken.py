"""An app whose import fails (test/supervisor-reload.test.ts, --check-config)."""
import os  # noqa: F401  (some real work before the failure)


def _connect():
    raise RuntimeError("supervisor_broken: cannot reach the database at import")


_connect()


def application(environ, start_response):  # never reached
    start_response("200 OK", [])
    return [b""]
