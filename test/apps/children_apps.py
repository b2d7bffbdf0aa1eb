"""An app that starts a process of its own at import, as apps with a
multiprocessing pool or a background job do: GH_TEST_CHILD=fork forks one
that holds every descriptor the worker has (its stream to the front
included), GH_TEST_CHILD=subprocess starts `sleep` with the worker's stdout
and stderr. Each such process's pid is appended to the file
GH_TEST_CHILD_PIDS, so the test can end them. Every answer is the worker's pid.
"""
import os
import subprocess
import time

KIND = os.environ.get("GH_TEST_CHILD", "")


def _record(pid):
    with open(os.environ["GH_TEST_CHILD_PIDS"], "a") as f:
        f.write("%d\n" % pid)


if KIND == "fork":
    child = os.fork()
    if child == 0:
        time.sleep(60)
        os._exit(0)
    _record(child)
elif KIND == "subprocess":
    _record(subprocess.Popen(["sleep", "60"]).pid)


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
