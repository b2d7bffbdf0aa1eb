/**
 * The two servers a request-head comparison runs against, started once per
 * test file: a real gatehouse serving test/apps/echo_head.py (with a short
 * --header-timeout, so that a head it waits for costs a fraction of a second,
 * seen as the outcome 'timeout'), and the node:http reference of
 * head-exchange.ts. runCase sends the same bytes to both, at once, on new
 * connections.
 */
import { APPS } from './gatehouse.js';
import { launch, type Server } from './harness.js';
import { caseOf, gatehousePath, judge, type Case, type Outcome, type Parsed, type Verdict } from './head-compare.js';
import { exchange, startReference, type Reference } from './head-exchange.js';

/** gatehouse's --header-timeout in these tests, in seconds. */
export const HEADER_TIMEOUT = 0.3;

export interface Result {
  case: Case;
  /** What node:http parsed, request by request. */
  parsed: Parsed[];
  ref: Outcome;
  gh: Outcome;
  verdict: Verdict;
}

export interface Servers {
  gatehouse: Server;
  reference: Reference;
  runCase(bytes: Buffer): Promise<Result>;
  stop(): Promise<void>;
}

export async function startServers(): Promise<Servers> {
  const reference = await startReference();
  let gatehouse: Server;
  try {
    gatehouse = await launch([`${APPS}/echo_head.py:app`, '--workers', '2', '--header-timeout', String(HEADER_TIMEOUT)]);
  } catch (err) {
    await reference.close();
    throw err;
  }
  const runCase = async (bytes: Buffer): Promise<Result> => {
    reference.take();
    const c = caseOf(bytes);
    // Gatehouse's side waits for at least as many answers as the reference gave (Python may be slower),
    // and as its fast path will give: an answer llhttp would not give is not missed for being late.
    const fastCount = c.reads.fast.filter((f) => f.next <= bytes.length).length;
    let refCount = Infinity;
    const refRun = exchange(reference.port, bytes).then((o) => {
      refCount = o.answers.length;
      return o;
    });
    const ghRun = exchange(gatehouse.port, bytes, { timeout408: true, atLeast: () => Math.max(refCount, fastCount), capMs: 5000 + HEADER_TIMEOUT * 1000 });
    const [ref, gh] = await Promise.all([refRun, ghRun]);
    ref.parsed = reference.take();
    // What node:http makes of the bytes the fast path leaves to it, on their own.
    const last = c.reads.fast[c.reads.fast.length - 1];
    if (last !== undefined && c.reads.then === 'llhttp') {
      ref.rest = await exchange(reference.port, bytes.subarray(last.next));
      reference.take();
    }
    return { case: c, parsed: ref.parsed, ref, gh, verdict: judge(c, ref, gh) };
  };
  return {
    gatehouse,
    reference,
    runCase,
    async stop() {
      await reference.close();
      await gatehouse.kill();
    },
  };
}

/** JSON of a string, long runs of one character shortened (`p×16340`) so that padded heads stay readable. */
function compact(value: unknown): string {
  return JSON.stringify(value).replace(/(.)\1{39,}/g, (run, ch: string) => `${ch}×${run.length}`);
}

/** A readable account of a case, for a failure message or the run's summary. */
export function report(r: Result): string {
  const show = (o: Outcome) =>
    `${o.answers.map((a) => (a.view === undefined ? String(a.status) : `${a.status} ${compact(a.view)}`)).join('\n    ') || '(no answer)'}\n    [${o.end}]`;
  return [
    `bytes: ${compact(r.case.bytes.toString('latin1'))}`,
    `gatehouse reads it with: ${gatehousePath(r.case.bytes).join(' → ') || '(nothing)'}`,
    `its fast path parsed: ${compact(r.case.reads.fast.map((f) => f.parsed))}`,
    `llhttp parsed: ${compact(r.parsed)}`,
    `llhttp (reference):\n    ${show(r.ref)}`,
    `gatehouse:\n    ${show(r.gh)}`,
    `verdict: ${r.verdict.kind === 'same' ? 'same' : r.verdict.kind === 'documented' ? `documented difference ${r.verdict.difference.id}` : `DISCREPANCY: ${r.verdict.why}`}`,
  ].join('\n');
}
