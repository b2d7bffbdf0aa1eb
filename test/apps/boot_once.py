"""Imports for the first worker only, as when the code changes on disk while the workers
start (test/partial-boot.test.ts).

  BOOT_ONCE_MARKER  the first import creates this file; an import that finds it raises
  BOOT_ONCE_FIRST   seconds the first (successful) import takes (default 0)
  BOOT_ONCE_SECOND  seconds the second import takes before it raises (default 0); later ones raise at once.
                    It claims $BOOT_ONCE_MARKER.second, and writes "raised" into it just before raising

The app answers with its pid.
"""
import os
import time

MARKER = os.environ["BOOT_ONCE_MARKER"]


def _claim(path):
    """True for the one process that creates `path`: O_EXCL, so workers importing at once cannot both win."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


if _claim(MARKER):
    time.sleep(float(os.environ.get("BOOT_ONCE_FIRST", "0")))
else:
    if _claim(MARKER + ".second"):
        time.sleep(float(os.environ.get("BOOT_ONCE_SECOND", "0")))
        with open(MARKER + ".second", "w") as f:
            f.write("raised")
    raise RuntimeError("boot_once: the code changed on disk during start-up")


def application(environ, start_response):
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
