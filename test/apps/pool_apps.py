"""Apps for the pool dispatch tests."""
import os
import time


def sleepy(environ, start_response):
    """/sleep/SECONDS sleeps; anything else answers at once. Both say which worker ran them."""
    path = environ["PATH_INFO"]
    if path.startswith("/sleep/"):
        time.sleep(float(path[len("/sleep/"):]))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%s %d" % (path, os.getpid())).encode()]


def stream(environ, start_response):
    """/big/MIB streams MIB mebibytes of a repeating pattern, no Content-Length; anything else is small."""
    path = environ["PATH_INFO"]
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    if not path.startswith("/big/"):
        return [b"small"]
    block = bytes(range(256)) * 256  # 64 KiB

    def body():
        for _ in range(int(path[len("/big/"):]) * 16):
            yield block

    return body()
