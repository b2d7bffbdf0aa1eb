/**
 * The sync worker's batching, driven over its real stream as the front drives
 * it (python/gatehouse_worker.py with the stream on fd 3, REQ frames written
 * several at a time): while requests wait in its queue it holds quick answers
 * to send them in one write, and the held answers must still go out while a
 * slow request behind them runs, never after it. The policy itself (which
 * answers are held, for how long) is checked on the sync loop alone, on a
 * clock of the test's own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { ROOT, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { decodeResponse, encodeRequest, Frame, FrameDecoder } from '../src/wire/frames.js';

// /slow runs until the test creates the file named in its query (or gives up after 10 s).
const APP = `
import os, time

def app(environ, start_response):
    body = environ["PATH_INFO"].encode()
    if body == b"/slow":
        deadline = time.monotonic() + 10
        while not os.path.exists(environ["QUERY_STRING"]):
            if time.monotonic() > deadline:
                body = b"gave up waiting"
                break
            time.sleep(0.005)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`;

function environ(path: string, query = ''): string {
  return ['REQUEST_METHOD', 'GET', 'SCRIPT_NAME', '', 'PATH_INFO', path, 'QUERY_STRING', query, 'SERVER_PROTOCOL', 'HTTP/1.1', 'SERVER_NAME', '127.0.0.1', 'SERVER_PORT', '80', 'wsgi.url_scheme', 'http'].join('\0');
}

/** A worker for APP; `answers` lists each RESPONSE as [request id, body] in arrival order. */
async function startWorker(dir: string) {
  writeFileSync(join(dir, 'batch_app.py'), APP);
  const child = spawn(SYSTEM_PYTHON, [join(ROOT, 'python', 'gatehouse_worker.py'), JSON.stringify({ app: `${join(dir, 'batch_app.py')}:app` })], {
    stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
  });
  const stream = child.stdio[3] as Socket;
  const answers: Array<[number, string]> = [];
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  const waiters: Array<() => void> = [];
  const decoder = new FrameDecoder((type, id, payload) => {
    if (type === Frame.READY) ready();
    if (type !== Frame.RESPONSE) return;
    answers.push([id, decodeResponse(payload).body.toString()]);
    for (const w of waiters.splice(0)) w();
  });
  stream.on('data', (chunk: Buffer) => decoder.push(chunk));
  await isReady;
  const answered = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => (answers.length >= n ? resolve() : waiters.push(check));
      check();
    });
  const stop = () => new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    stream.end();
  });
  return { stream, answers, answered, stop };
}

test('requests written together are all answered, each with its own id', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-batch-'));
  const w = await startWorker(dir);
  try {
    const paths = Array.from({ length: 16 }, (_, i) => `/r${i}`);
    w.stream.write(Buffer.concat(paths.map((p, i) => encodeRequest(i + 1, environ(p), null))));
    await w.answered(16);
    assert.deepEqual(w.answers, paths.map((p, i) => [i + 1, p]));
  } finally {
    await w.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('quick answers held for one write still go out while a slow request behind them runs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-batch-'));
  const w = await startWorker(dir);
  try {
    const flag = join(dir, 'go');
    const paths = ['/a', '/b', '/c', '/slow', '/d'];
    w.stream.write(Buffer.concat(paths.map((p, i) => encodeRequest(i + 1, environ(p, flag), null))));
    // /slow runs until the flag exists: the three answers before it must come first.
    await w.answered(3);
    writeFileSync(flag, '');
    await w.answered(5);
    assert.deepEqual(w.answers.map(([, body]) => body), paths, '/slow was let go, not tired of waiting');
    assert.deepEqual(w.answers.map(([id]) => id), [1, 2, 3, 4, 5]);
  } finally {
    await w.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * python/gatehouse_sync.py's serve_sync on a stand-in stream with `durations[i]`
 * seconds of app time per request, all queued at the start, on a clock that
 * moves only by them; each write as the request ids it carried and its time,
 * and when each answer was ready.
 */
function syncWrites(durations: number[]): { writes: Array<{ ids: number[]; at: number }>; ready: number[] } {
  const script = `
import collections, json, sys, threading
sys.path.insert(0, sys.argv[1])
import gatehouse_sync as gs
durations = json.loads(sys.argv[2])
now = [0.0]
gs.perf_counter = lambda: now[0]
gs.WATCH_INTERVAL = 3600  # the watcher thread stays out of it: its flushes are timed by the real clock
writes, ready = [], [None] * len(durations)
class Stream:
    pending = collections.deque((i, b"") for i in range(len(durations)))
    lock = threading.Lock()
    cancelled = set()
    stopping = current = held = None
    busy = False
    def read_frames(self, block):
        return False
    def respond(self, rid):
        ready[rid] = now[0]
        if self.held is None: writes.append({"ids": [rid], "at": now[0]})
        else: self.held.append(rid)
    def flush(self):
        held, self.held = self.held, None
        if held: writes.append({"ids": held, "at": now[0]})
stream = Stream()
def handle(rid, payload):
    now[0] += durations[rid]
    stream.respond(rid)
gs.serve_sync(stream, handle)
print(json.dumps({"writes": writes, "ready": ready}))
`;
  const r = spawnSync(SYSTEM_PYTHON, ['-c', script, join(ROOT, 'python'), JSON.stringify(durations)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as ReturnType<typeof syncWrites>;
}

test('the sync loop writes quick answers together for up to a millisecond, and slower ones one by one', () => {
  // A quick app (50 µs a request, Flask's pace), 40 requests queued: a write about every millisecond.
  const quick = syncWrites(Array(40).fill(0.00005));
  assert.deepEqual(quick.writes.flatMap((w) => w.ids), [...Array(40).keys()], 'every answer once, in order');
  assert.ok(quick.writes.length <= 3, `40 quick answers in ${quick.writes.length} writes: ${quick.writes.map((w) => w.ids.length).join(', ')}`);
  for (const w of quick.writes) {
    for (const id of w.ids) assert.ok(w.at - quick.ready[id]! <= 0.001 + 1e-9, `answer ${id} held ${((w.at - quick.ready[id]!) * 1e6).toFixed(0)} µs`);
  }
  // 0.5 ms a request: holding would make each answer wait for the next request, for little.
  const slower = syncWrites(Array(6).fill(0.0005));
  assert.deepEqual(slower.writes.map((w) => w.ids), [[0], [1], [2], [3], [4], [5]]);
  // Quick answers, then a slow request: they go out as soon as it ends (the watcher thread sends them
  // while it runs), and the quick ones after it are not held behind it.
  const mixed = syncWrites([0.00005, 0.00005, 0.00005, 0.05, 0.00005, 0.00005]);
  assert.deepEqual(mixed.writes.map((w) => w.ids), [[0, 1, 2, 3], [4], [5]]);
});
