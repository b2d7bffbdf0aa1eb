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
