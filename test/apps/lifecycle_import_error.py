"""An app that cannot be imported: loading it raises (test/lifecycle.test.ts)."""
import json  # noqa: F401  (a real module does some work before failing)


def _configure():
    raise RuntimeError("lifecycle_import_error: the database URL is not set")


_configure()


def application(environ, start_response):  # never reached
    start_response("200 OK", [])
    return [b""]
