/**
 * The two servers a request-head comparison runs against, started once per
 * test file: a real gatehouse serving test/apps/echo_head.py (with a short
 * --header-timeout, so that a head it waits for costs a fraction of a second,
 * seen as the outcome 'timeout'), and the node:http reference of
 * head-exchange.ts. runCase sends the same bytes to both, at once, on new
 * connections.
 */
import { APPS } from './gatehouse.js';
import { launch, type Server } from './launch.js';
import { judge, type Verdict } from './head-differences.js';
import type { Outcome, Parsed } from './head-outcome.js';
import { caseOf, gatehousePath, requestStarts, type Case } from './head-readers.js';
import { standIns, type StoodIn } from './head-stand-ins.js';
import { exchange, startReference, type Reference } from './head-exchange.js';

/** gatehouse's --header-timeout in these tests, in seconds. */
export const HEADER_TIMEOUT = 0.3;

export interface Result {
  case: Case;
  /** In how many pieces the bytes were sent. */
  pieces: number;
  /** What node:http parsed, request by request. */
  parsed: Parsed[];
  ref: Outcome;
  gh: Outcome;
  verdict: Verdict;
}

export interface Servers {
  gatehouse: Server;
  reference: Reference;
  /** Sends `bytes` (in these pieces, a few ms apart, if given) to both servers and judges the outcomes. */
  runCase(bytes: Buffer, pieces?: Buffer[]): Promise<Result>;
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
  const runCase = async (bytes: Buffer, pieces: Buffer[] = [bytes]): Promise<Result> => {
    const c = caseOf(bytes);
    // The reference on the whole, and (when gatehouse's fast path reads some requests and leaves the
    // rest to node:http) on what the fast path leaves, alone: what node:http makes of it in gatehouse.
    const last = c.reads.fast[c.reads.fast.length - 1];
    const ready = reference.idle;
    // With the stand-in lines gatehouse has llhttp read (head-stand-ins.ts's standIns), in the same pieces.
    const whole = standIns(bytes, requestStarts(c.reads));
    const toReference = (s: StoodIn, parts: Buffer[]) => exchange(reference.port, recut(s, parts), { ready, connected: (port) => reference.standIns(port, s.sent) });
    const refRun = toReference(whole, pieces);
    const handed = last !== undefined && c.reads.then === 'llhttp' ? standIns(bytes.subarray(last.next), [0]) : null;
    const restRun = handed === null ? null : toReference(handed, [handed.bytes]);
    const refs = Promise.all([refRun, restRun]);
    // Gatehouse's side waits for at least as many answers as the reference gave (Python may be slower),
    // and as its fast path will give, and for the close if the reference closed: an answer or a close is
    // not missed for coming late.
    const fastCount = c.reads.fast.filter((f) => f.next <= bytes.length).length;
    let expected = Infinity;
    let closes = false;
    void refs.then(([ref, rest]) => {
      expected = Math.max(ref.answers.length, rest === null ? fastCount : fastCount + rest.answers.length);
      closes = ref.end === 'closed' || rest?.end === 'closed';
    });
    const ghRun = exchange(gatehouse.port, pieces, {
      timeout408: true,
      atLeast: () => expected,
      untilClosed: () => closes,
      capMs: 5000 + HEADER_TIMEOUT * 1000,
    });
    const [[ref, rest], gh] = await Promise.all([refs, ghRun]);
    const outcome = ({ port: _, ...o }: Outcome & { port: number }): Outcome => o;
    const refOutcome: Outcome = { ...outcome(ref), ...reference.take(ref.port) };
    if (rest !== null) refOutcome.rest = { ...outcome(rest), ...reference.take(rest.port) };
    const ghOutcome = outcome(gh);
    return { case: c, pieces: pieces.length, parsed: refOutcome.parsed!, ref: refOutcome, gh: ghOutcome, verdict: judge(c, refOutcome, ghOutcome) };
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

/** The stood-in bytes cut where `pieces` (of the original bytes) were. */
function recut(s: StoodIn, pieces: Buffer[]): Buffer[] {
  if (pieces.length === 1) return [s.bytes];
  const out: Buffer[] = [];
  let from = 0;
  let end = 0;
  for (const piece of pieces) {
    end += piece.length;
    const to = s.at(end);
    out.push(s.bytes.subarray(from, to));
    from = to;
  }
  return out;
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
    `bytes: ${compact(r.case.bytes.toString('latin1'))}${r.pieces > 1 ? ` (sent in ${r.pieces} pieces)` : ''}`,
    `gatehouse reads it with: ${gatehousePath(r.case.bytes).join(' → ') || '(nothing)'}`,
    `its fast path parsed: ${compact(r.case.reads.fast.map((f) => f.parsed))}`,
    `llhttp parsed: ${compact(r.parsed)}`,
    `llhttp (reference):\n    ${show(r.ref)}`,
    `gatehouse:\n    ${show(r.gh)}`,
    `verdict: ${r.verdict.kind === 'same' ? 'same' : r.verdict.kind === 'documented' ? `documented difference ${r.verdict.difference.id}` : `DISCREPANCY: ${r.verdict.why}`}`,
  ].join('\n');
}
