"""Per-request cost inside the gatehouse Python worker, with no HTTP and no front.

Two measurements, each against the bare app call:

1. `Handler.handle(rid, payload)` from python/gatehouse_wsgi.py, in this
   process, on a REQ payload built the way the front builds it
   (src/wsgi/environ.ts, src/wire/frames.ts): u32 little-endian environ
   length, then the latin-1 environ block `KEY\\0VALUE\\0...`, then the body
   (none for a GET). The stream is a stand-in whose sendall() discards the
   frames, so what is timed is: decode the environ block, build the environ
   dict, call the app, check the headers, encode the response frames.

2. The whole worker: python/gatehouse_worker.py started as the front starts it
   (settings as JSON, a socketpair on fd 3), sent wrk GETs as REQ frames in
   batches of 16 in one write (the most the front hands a busy sync worker)
   and, separately, one at a time. What is measured is the worker process's
   CPU time (all its threads, user and system, from
   /proc/PID/task/*/schedstat) per request: the loop, reading and writing
   frames, system calls, and what system calls cost the code after them (on
   a kernel with page-table isolation each one empties the TLB). This is the
   figure to hold against the bare app call. While a batch is worked on this
   process sleeps, so the worker runs alone, as the bare call does.

   A worker blocks when it has nothing to do, and after each wake-up the app's
   code and data are colder in the CPU caches than in a tight loop (on a busy
   machine other processes ran meanwhile): a large app (Flask) then costs
   more per call, whichever server runs it. So the whole-worker figures are
   held against the bare app call paced the same way: `depth` calls, then this
   thread blocks for as long as the driver lets the worker wait (one block and
   wake-up per batch, as the worker has). The tight-loop bare call is printed
   too; the overhead of the worker is the paced difference.

The bare app call is the app alone: called with a fresh copy of a prebuilt
environ dict (an app may write to its environ: Werkzeug does) and a trivial
start_response, its body joined and its close() called (the least any WSGI
server must do). The difference is the worker's own overhead. "Bare app
call + write" also writes the body to /dev/null: one system call, the least
any server must make per response, and on a kernel with page-table isolation
(this VM's) not only the call's own time but a cold TLB for the code after it.

Each number is the best of 10 rounds (--rounds), in microseconds of CPU time
per request; the rounds of all the figures of an app are interleaved, so they
all see the same machine. Two payloads are timed in (1): what wrk sends (a
Host header only) and a typical browser GET (8 headers); (2) uses the first.
--compare DIR measures another worker's python/ directory (an older checkout)
in the same interleaved rounds.

Run it with Debian's interpreter (Flask comes from python3-flask):

    /usr/bin/python3 bench/worker_cost.py            # human-readable
    /usr/bin/python3 bench/worker_cost.py --json     # what bench/run.ts reads
    /usr/bin/python3 bench/worker_cost.py --app flaskapp=test/apps/flaskapp/flask_demo.py@/api/items/1
    /usr/bin/python3 bench/worker_cost.py --compare /tmp/old-checkout/python

Standard library only besides Flask (the flask case is skipped without it).
Linux only for (2) (/proc and posix_spawn); --loop-scale 0 skips it. Its worker process and
pacer are in bench/worker_process.py, next to this file.
"""

import argparse
import gc
import importlib.util
import json
import os
import struct
import sys
import time

# First: worker_process (bench/worker_process.py, the whole worker) puts python/ on sys.path.
from worker_process import HERE, PIPELINE_DEPTH, WORKER, Pacer, WorkerProcess, paced

import gatehouse_wire as wire  # noqa: E402  (needs python/ on sys.path)
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


def req_payload(headers, body=b"", path="/"):
    """The REQ frame's payload (src/wire/frames.ts encodeRequest() minus the 9-byte header)."""
    block = environ_block(headers, path)
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


def best_us(loops, rounds):
    """Runs each measurement `rounds` times, interleaved: {name: (run, calls)}, where
    run(calls) returns microseconds per call.

    Returns the best round of each. Interleaving and keeping the best round make
    the numbers robust to other work on the machine: what disturbs one round does
    not hit the others, and every figure sees the same machine.
    """
    best = {name: float("inf") for name in loops}
    for r in range(rounds):
        names = list(loops) if r % 2 == 0 else list(reversed(loops))
        for name in names:
            run, calls = loops[name]
            best[name] = min(best[name], run(calls))
    return best


def timed(loop):
    """loop(n) as run(n) for best_us(): this thread's CPU time per call, in microseconds
    (the unit of the whole-worker figures, and blind to other processes taking the CPU)."""
    clock = time.thread_time

    def run(n):
        t0 = clock()
        loop(n)
        return (clock() - t0) / n * 1e6

    return run


def measure(app_file, path, iterations, rounds, loop_iterations, compare=None):
    app = load(app_file, "app")
    wrk_payload = req_payload(WRK_HEADERS, path=path)
    browser_payload = req_payload(BROWSER_HEADERS, path=path)
    frames = check_response(app, wrk_payload)
    handler = gw.Handler(app, wire.Stream(NullSock()), {})
    handle = handler.handle
    environ = handler.build_environ(wrk_payload)

    def write(data):
        pass

    def start_response(status, headers, exc_info=None):
        return write

    def app_alone(n):
        for _ in range(n):
            result = app(environ.copy(), start_response)
            b"".join(result)
            close = getattr(result, "close", None)
            if close is not None:
                close()

    devnull = os.open(os.devnull, os.O_WRONLY)

    def app_write(n):
        for _ in range(n):
            result = app(environ.copy(), start_response)
            os.write(devnull, b"".join(result))
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
    chunk = max(1, iterations // rounds)
    loops = {
        "app_us": (timed(app_alone), chunk),
        "app_write_us": (timed(app_write), chunk),
        "handle_wrk_us": (timed(handle_loop(wrk_payload)), chunk),
        "handle_browser_us": (timed(handle_loop(browser_payload)), chunk),
    }
    # The whole worker (and with --compare another one): see WorkerProcess.drive().
    scripts = {"": WORKER}
    if compare:
        scripts["compare_"] = os.path.join(compare, "gatehouse_worker.py")
    workers = []
    # Forked before the workers start, so that it holds none of their streams open.
    pacer = Pacer() if loop_iterations else None
    try:
        if loop_iterations:
            for prefix, script in scripts.items():
                worker = WorkerProcess(app_file + ":app", script=script)
                workers.append(worker)
                worker.drive(wrk_payload, min(loop_iterations, 1000), PIPELINE_DEPTH)  # warm up
                per_round = max(1, loop_iterations // rounds)
                loops[prefix + "loop_depth16_us"] = (bind(worker.cpu_us_per_request, wrk_payload, PIPELINE_DEPTH), per_round)
                # One at a time, each request waits for a wake-up on both sides: a tenth as many.
                loops[prefix + "loop_depth1_us"] = (bind(worker.cpu_us_per_request, wrk_payload, 1), max(1, per_round // 10))
                if not prefix:
                    loops["app_paced16_us"] = (timed(paced(app_alone, pacer, worker, PIPELINE_DEPTH)), per_round)
                    loops["app_paced1_us"] = (timed(paced(app_alone, pacer, worker, 1)), max(1, per_round // 10))
        result = best_us(loops, rounds)
    finally:
        for worker in workers:
            worker.close()
        if pacer is not None:
            pacer.close()
        os.close(devnull)
    result.update(
        iterations=iterations,
        rounds=rounds,
        frames=frames,
        wrk_environ_bytes=len(wrk_payload),
        browser_environ_bytes=len(browser_payload),
    )
    if loop_iterations:
        result["loop_iterations"] = loop_iterations
    if compare:
        result["compare"] = {key[len("compare_") :]: result.pop(key) for key in list(result) if key.startswith("compare_")}
        result["compare"]["worker"] = scripts["compare_"]
    return result

def bind(cpu_us_per_request, payload, depth):
    return lambda n: cpu_us_per_request(payload, n, depth)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hello-iterations", type=int, default=200000)
    parser.add_argument("--flask-iterations", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds per measurement; the best is kept")
    parser.add_argument(
        "--loop-scale", type=float, default=1.0,
        help="requests for the whole-worker measurement, as a share of each app's iterations (0: skip it)",
    )
    parser.add_argument(
        "--app", action="append", default=[], metavar="NAME=FILE.py[@PATH]",
        help="also measure FILE.py's `app`, requested at PATH (default /); repeatable",
    )
    parser.add_argument("--only", help="apps to measure, comma-separated (default all)")
    parser.add_argument(
        "--compare", metavar="DIR",
        help="another worker's python/ directory (an older checkout): its whole-worker figures, in interleaved rounds",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.compare and args.loop_scale <= 0:
        parser.error("--compare measures whole workers: it needs --loop-scale above 0")

    results = {"python": sys.version.split()[0], "apps": {}, "skipped": {}}
    apps = [("hello", os.path.join(HERE, "apps", "hello.py"), "/", args.hello_iterations)]
    if importlib.util.find_spec("flask") is None:
        results["skipped"]["flask"] = "flask is not installed for %s" % sys.executable
    else:
        apps.append(("flask", os.path.join(HERE, "apps", "flask_json.py"), "/", args.flask_iterations))
    for spec in args.app:
        name, _, rest = spec.partition("=")
        app_file, _, path = rest.partition("@")
        apps.append((name, os.path.abspath(app_file), path or "/", args.flask_iterations))
    if args.only:
        wanted = args.only.split(",")
        apps = [a for a in apps if a[0] in wanted]
    gc.collect()
    for name, app_file, path, iterations in apps:
        results["apps"][name] = measure(
            app_file, path, iterations, args.rounds, int(iterations * args.loop_scale), args.compare and os.path.abspath(args.compare)
        )

    if args.json:
        print(json.dumps(results))
        return
    print("Per-request cost inside the Python worker (Python %s, best of %d rounds)" % (results["python"], args.rounds))
    for name, r in results["apps"].items():
        print(
            "  %-8s bare app call %8.2f us (with a write: %.2f us)   Handler.handle(): wrk GET %8.2f us, 8-header GET %8.2f us"
            "   (overhead %.2f us; %d iterations; frames %s)"
            % (name, r["app_us"], r["app_write_us"], r["handle_wrk_us"], r["handle_browser_us"],
               r["handle_wrk_us"] - r["app_us"], r["iterations"], r["frames"])
        )
        if "loop_depth16_us" in r:
            print(
                "  %-8s bare app call paced like the worker: batched %8.2f us, one at a time %8.2f us"
                % (name, r["app_paced16_us"], r["app_paced1_us"])
            )
            print(
                "  %-8s worker process CPU per request: batched (depth %d) %8.2f us"
                " (overhead %.2f us), one at a time %8.2f us (overhead %.2f us; %d + %d requests)"
                % (name, PIPELINE_DEPTH, r["loop_depth16_us"], r["loop_depth16_us"] - r["app_paced16_us"],
                   r["loop_depth1_us"], r["loop_depth1_us"] - r["app_paced1_us"], r["loop_iterations"], r["loop_iterations"] // 10)
            )
        if "compare" in r:
            c = r["compare"]
            print(
                "  %-8s %s: batched %8.2f us (overhead %.2f us), one at a time %8.2f us (overhead %.2f us)"
                % (name, c["worker"], c["loop_depth16_us"], c["loop_depth16_us"] - r["app_paced16_us"],
                   c["loop_depth1_us"], c["loop_depth1_us"] - r["app_paced1_us"])
            )
    for name, why in results["skipped"].items():
        print("  %-6s skipped: %s" % (name, why))


if __name__ == "__main__":
    main()
