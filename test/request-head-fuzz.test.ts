/**
 * Property: the front's own HTTP/1 reader (src/front/request-head.ts and
 * fast-path.ts) reads every request head exactly as llhttp does.
 *
 * fast-check generates request heads (test/helpers/head-arbitrary.ts: valid,
 * almost valid and hostile ones, sometimes pipelined) and each is sent, over
 * real sockets, both to a real gatehouse serving test/apps/echo_head.py and
 * to a plain node:http server in this process (the reference: llhttp with
 * gatehouse's default 16k head limit). Both must accept it and let the app
 * see the same method, target, version, headers and body, or refuse it with
 * the same status, and leave the connection in the same state — or differ
 * in a way documented in test/helpers/head-differences.ts's DIFFERENCES. A
 * failure prints the bytes, which reader gatehouse used (its fast path or
 * llhttp), what llhttp parsed, and both outcomes, shrunk to a small case.
 *
 * `npm test` runs GH_FUZZ_RUNS cases (default 300, about 10 s). More, and a given seed:
 *
 *     GH_FUZZ_RUNS=20000 node --test dist/test/request-head-fuzz.test.js
 *     GH_FUZZ_SEED=123456 GH_FUZZ_RUNS=250 node --test dist/test/request-head-fuzz.test.js
 *
 * The seed of every run is printed, so a failure seen once can be replayed.
 * GH_FUZZ_KEEP_GOING=1 does not stop (and shrink) at the first discrepancy:
 * it runs every case and reports all the discrepancies at the end.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { caseBytes, caseChunks, requestCase } from './helpers/head-arbitrary.js';
import { gatehousePath } from './helpers/head-readers.js';
import { report, startServers, type Result, type Servers } from './helpers/head-run.js';
import { isAlive } from './helpers/processes.js';

const RUNS = Number(process.env.GH_FUZZ_RUNS ?? 300);
const KEEP_GOING = process.env.GH_FUZZ_KEEP_GOING === '1';
const SEED = process.env.GH_FUZZ_SEED === undefined ? Date.now() ^ (Math.random() * 0x7fffffff) : Number(process.env.GH_FUZZ_SEED);

let servers: Servers;
before(async () => {
  servers = await startServers();
});
after(async () => {
  await servers?.stop();
});

/** The whole run, shrinking included; fast-check stops (a failure) a little before. */
const TIMEOUT = Math.max(120_000, RUNS * 100);

test(`the front reads ${RUNS} generated request heads as llhttp does (seed ${SEED})`, { timeout: TIMEOUT }, async (t) => {
  const started = Date.now();
  const readers = new Map<string, number>();
  const verdicts = new Map<string, number>();
  const count = (m: Map<string, number>, key: string) => m.set(key, (m.get(key) ?? 0) + 1);
  let last: Result | null = null;
  const found: Result[] = [];
  await fc.assert(
    fc.asyncProperty(requestCase, async (c) => {
      const r = await servers.runCase(caseBytes(c), caseChunks(c));
      last = r;
      count(readers, gatehousePath(r.case.bytes).join('→') || '(nothing)');
      count(verdicts, r.verdict.kind === 'documented' ? `documented: ${r.verdict.difference.id}` : r.verdict.kind);
      if (r.verdict.kind !== 'discrepancy') return;
      if (KEEP_GOING) found.push(r);
      else throw new Error(`gatehouse reads this head otherwise than llhttp:\n${report(r)}`);
    }),
    { numRuns: RUNS, seed: SEED, includeErrorInReport: true, interruptAfterTimeLimit: TIMEOUT - 15_000, markInterruptAsFailure: true },
  );
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n} ${k}`).join(', ');
  t.diagnostic(`${RUNS} cases in ${((Date.now() - started) / 1000).toFixed(1)} s (shrinking included, if any)`);
  t.diagnostic(`gatehouse's readers: ${sorted(readers)}`);
  t.diagnostic(`verdicts: ${sorted(verdicts)}`);
  assert.ok(last !== null);
  assert.equal(found.length, 0, `${found.length} discrepancies:\n\n${found.map(report).join('\n\n')}`);
  // The generator must reach both readers, the fast path often, or the property proves little.
  const total = [...readers.values()].reduce((a, b) => a + b, 0);
  const fast = [...readers].filter(([k]) => k.startsWith('fast')).reduce((n, [, v]) => n + v, 0);
  assert.ok(fast >= total / 10, `only ${fast} of ${total} cases went to the fast path`);
  assert.ok([...readers.keys()].some((k) => k.includes('llhttp')), 'no case went to llhttp');
  assert.ok(isAlive(servers.gatehouse.pid), 'gatehouse died during the run');
});
