"""Per-request cost inside the gatehouse Python worker, with no HTTP and no front.

Times `Handler.handle(rid, payload)` from python/gatehouse_wsgi.py on a REQ
payload built the way the front builds it (src/wsgi/environ.ts,
src/wire/frames.ts): u32 little-endian environ length, then the latin-1
environ block `KEY\\0VALUE\\0...`, then the body (none for a GET). The socket
is a stand-in whose sendall() discards the frames, so what is measured is:
decode the environ block, build the environ dict, call the app, check the
headers, encode the response frames.

Each number is the best of 10 interleaved rounds (--rounds), in microseconds
per request.

The baseline is the app alone: called with a prebuilt environ dict and a
trivial start_response, its body joined and its close() called (the least any
WSGI server must do). The difference is the worker's own overhead.

Two payloads are timed: what wrk sends (a Host header only) and a typical
browser GET (8 headers).

Run it with Debian's interpreter (Flask comes from python3-flask):

    /usr/bin/python3 bench/worker_cost.py            # human-readable
    /usr/bin/python3 bench/worker_cost.py --json     # what bench/run.ts reads

Standard library only besides Flask (the flask case is skipped without it).
"""

import argparse
import gc
import importlib.util
import json
import os
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "python"))

import gatehouse_wire as wire  # noqa: E402  (needs the sys.path line above)
import gatehouse_wsgi as gw  # noqa: E402

# What wrk sends: `GET / HTTP/1.1` and a Host header, nothing else.
WRK_HEADERS = [("Host", "127.0.0.1:8000")]

# A typical browser GET: 8 headers.
BROWSER_HEADERS = [
    ("Host", "127.0.0.1:8000"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"),
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"),
    ("Accept-Language", "en-US,en;q=0.5"),
    ("Accept-Encoding", "gzip, deflate, br"),
    ("Connection", "keep-alive"),
    ("Cookie", "session=4f6c1e0b9a2d4c7e8f3a5b6c7d8e9f00; theme=dark"),
    ("Upgrade-Insecure-Requests", "1"),
]


def environ_block(headers, path="/", query=""):
    """The environ block as src/wsgi/environ.ts buildEnviron() writes it for a bodiless GET."""
    url = path + ("?" + query if query else "")
    parts = [
        "REQUEST_METHOD", "GET",
        "SCRIPT_NAME", "",
        "PATH_INFO", path,
        "QUERY_STRING", query,
        "RAW_URI", url,
        "REQUEST_URI", url,
        "SERVER_PROTOCOL", "HTTP/1.1",
        # connectionEnviron()
        "SERVER_NAME", "127.0.0.1",
        "SERVER_PORT", "8000",
        "REMOTE_ADDR", "127.0.0.1",
        "REMOTE_PORT", "54321",
        "wsgi.url_scheme", "http",
    ]
    # No CONTENT_LENGTH: the front omits it when the request has no body.
    for name, value in headers:
        if "_" in name or name.lower() in ("transfer-encoding", "content-length"):
            continue
        if name.lower() == "content-type":
            parts += ["CONTENT_TYPE", value]
        else:
            parts += ["HTTP_" + name.upper().replace("-", "_"), value]
    return "\0".join(parts).encode("latin-1")


def req_payload(headers, body=b""):
    """The REQ frame's payload (src/wire/frames.ts encodeRequest() minus the 9-byte header)."""
    block = environ_block(headers)
    return struct.pack("<I", len(block)) + block + body


class NullSock:
    """Stands in for the worker's stream to the front: sendall() discards."""

    def sendall(self, data):
        pass


class CaptureSock:
    def __init__(self):
        self.data = b""

    def sendall(self, data):
        self.data += data


def load(path, name):
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return getattr(module, name)


def check_response(app, payload):
    """One request through a capturing socket: the app must answer 200. Returns the frame kinds."""
    sock = CaptureSock()
    gw.Handler(app, wire.Stream(sock), {}).handle(1, payload)
    kinds, pos, head = [], 0, None
    while pos < len(sock.data):
        kind, _rid, length = wire.HEADER.unpack_from(sock.data, pos)
        body = sock.data[pos + wire.HEADER_SIZE : pos + wire.HEADER_SIZE + length]
        kinds.append(kind)
        if kind == wire.RESPONSE:
            head = body[4 : 4 + wire.U32.unpack_from(body, 0)[0]]
        elif kind == wire.START:
            head = body
        pos += wire.HEADER_SIZE + length
    status = head.split(b"\0", 1)[0].decode("latin-1") if head is not None else "(no response head)"
    if not status.startswith("200"):
        raise SystemExit("worker_cost: the app answered %r, not 200" % status)
    names = {wire.RESPONSE: "RESPONSE", wire.START: "START", wire.BODY: "BODY", wire.END: "END"}
    return "+".join(names.get(k, str(k)) for k in kinds)


def best_us(loops, n, rounds):
    """Runs each loop n times in all, as `rounds` interleaved rounds of n // rounds calls.

    Returns the best round of each, in microseconds per call. Interleaving and
    keeping the best round make the numbers robust to other work on the
    machine: what interrupts one round does not hit the others.
    """
    chunk = max(1, n // rounds)
    best = {name: float("inf") for name in loops}
    perf_counter = time.perf_counter
    for _ in range(rounds):
        for name, loop in loops.items():
            t0 = perf_counter()
            loop(chunk)
            best[name] = min(best[name], perf_counter() - t0)
    return {name: t / chunk * 1e6 for name, t in best.items()}


def measure(app, iterations, rounds):
    wrk_payload = req_payload(WRK_HEADERS)
    browser_payload = req_payload(BROWSER_HEADERS)
    frames = check_response(app, wrk_payload)
    worker = gw.Handler(app, wire.Stream(NullSock()), {})
    handle = worker.handle
    environ = worker.build_environ(wrk_payload)

    def write(data):
        pass

    def start_response(status, headers, exc_info=None):
        return write

    def app_alone(n):
        for _ in range(n):
            result = app(environ, start_response)
            b"".join(result)
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def handle_loop(payload):
        def run(n):
            for _ in range(n):
                handle(1, payload)

        return run

    app_alone(min(iterations, 1000))  # warm caches (Flask builds things on first use)
    handle_loop(wrk_payload)(min(iterations, 1000))
    us = best_us(
        {
            "app_us": app_alone,
            "handle_wrk_us": handle_loop(wrk_payload),
            "handle_browser_us": handle_loop(browser_payload),
        },
        iterations,
        rounds,
    )
    return dict(
        us,
        iterations=iterations,
        rounds=rounds,
        frames=frames,
        wrk_environ_bytes=len(wrk_payload),
        browser_environ_bytes=len(browser_payload),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hello-iterations", type=int, default=200000)
    parser.add_argument("--flask-iterations", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds per measurement; the best is kept")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    results = {"python": sys.version.split()[0], "apps": {}, "skipped": {}}
    apps = [("hello", os.path.join(HERE, "apps", "hello.py"), args.hello_iterations)]
    if importlib.util.find_spec("flask") is None:
        results["skipped"]["flask"] = "flask is not installed for %s" % sys.executable
    else:
        apps.append(("flask", os.path.join(HERE, "apps", "flask_json.py"), args.flask_iterations))
    gc.collect()
    for name, path, iterations in apps:
        results["apps"][name] = measure(load(path, "app"), iterations, args.rounds)

    if args.json:
        print(json.dumps(results))
        return
    print("Per-request cost inside the Python worker (Python %s, best of %d rounds)" % (results["python"], args.rounds))
    for name, r in results["apps"].items():
        print(
            "  %-6s app alone %8.2f us   worker.handle(): wrk GET %8.2f us, 8-header GET %8.2f us"
            "   (overhead %.2f us; %d iterations; frames %s)"
            % (name, r["app_us"], r["handle_wrk_us"], r["handle_browser_us"],
               r["handle_wrk_us"] - r["app_us"], r["iterations"], r["frames"])
        )
    for name, why in results["skipped"].items():
        print("  %-6s skipped: %s" % (name, why))


if __name__ == "__main__":
    main()
