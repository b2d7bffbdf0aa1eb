"""App for test/preload.test.ts: records each import (pid) in $PRELOAD_IMPORTS and answers with
VERSION (read from $PRELOAD_VERSION_FILE at import; "broken" makes the import raise) and its pid."""
import os

with open(os.environ["PRELOAD_VERSION_FILE"]) as f:
    VERSION = f.read().strip()
if VERSION == "broken":
    raise RuntimeError("preload_app: simulated broken deploy")
with open(os.environ["PRELOAD_IMPORTS"], "a") as f:
    f.write("%d\n" % os.getpid())


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%s %d %d" % (VERSION, os.getpid(), os.getppid())).encode()]
