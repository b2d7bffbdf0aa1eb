"""WSGI apps for test/supervisor-*.test.ts (stdlib only).

Module-level settings, read once at import (so a reload is what changes them):
  SUP_VERSION_FILE   file whose stripped contents are VERSION (else $SUP_VERSION, else "none");
                     a VERSION starting with "broken" makes the import raise ("broken@T": at Unix time T)
  SUP_IMPORT_DELAY   seconds to sleep while importing (default 0)

Apps:
  versioned   answers "version=<VERSION> pid=<pid>"
  hog         /grow keeps ~80 MB in a module-level list and answers "grew <MB> pid=<pid>";
              /rss answers "rss=<kB> pid=<pid>"; anything else "pid=<pid>"
"""
import os
import time


def _read_version():
    path = os.environ.get("SUP_VERSION_FILE")
    if path:
        with open(path) as f:
            return f.read().strip()
    return os.environ.get("SUP_VERSION", "none")


VERSION = _read_version()

if VERSION.startswith("broken"):
    # "broken@T": fail at Unix time T, so that every worker booting this code fails at the same moment.
    _at = VERSION.partition("@")[2]
    if _at:
        time.sleep(max(0.0, float(_at) - time.time()))
    raise RuntimeError("supervisor_apps: simulated broken deploy (VERSION=%r)" % VERSION)

_delay = float(os.environ.get("SUP_IMPORT_DELAY", "0"))
if _delay > 0:
    time.sleep(_delay)

_hoard = []


def _answer(start_response, text):
    body = text.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def versioned(environ, start_response):
    return _answer(start_response, "version=%s pid=%d" % (VERSION, os.getpid()))


def _rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def hog(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/grow":
        # Written bytes (not a calloc'ed bytearray), so the pages are resident.
        _hoard.append(b"\x01" * (80 * 1024 * 1024))
        return _answer(start_response, "grew %d pid=%d" % (_rss_kb() // 1024, os.getpid()))
    if path == "/rss":
        return _answer(start_response, "rss=%d pid=%d" % (_rss_kb(), os.getpid()))
    return _answer(start_response, "pid=%d" % os.getpid())
