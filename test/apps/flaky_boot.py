"""Imports fine until the file named by $FLAKY_MARKER exists; then every new worker fails to boot."""
import os

if os.path.exists(os.environ["FLAKY_MARKER"]):
    raise RuntimeError("simulated broken deploy")


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
