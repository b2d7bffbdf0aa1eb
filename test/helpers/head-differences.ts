/**
 * The verdict on one request (test/request-head-fuzz.test.ts,
 * test/request-head-fixtures.test.ts): judge compares the reference's and
 * gatehouse's outcomes: the same, a difference documented in DIFFERENCES,
 * or a discrepancy (a test failure).
 *
 * DIFFERENCES is the table of every known way gatehouse answers otherwise
 * than llhttp would, with the reason. When the front's reader changes on
 * purpose, its entry changes here (and the fixtures that show it).
 */
import { differs, type Answer, type Outcome, type Parsed } from './head-outcome.js';
import { fastAnswer, type Case } from './head-readers.js';

export interface Difference {
  /** Short name, used by the fixtures and in the run's summary. */
  id: string;
  /**
   * 'deliberate': gatehouse means to answer otherwise; 'pending': a known
   * item of issue 9 being changed now, recorded here as it is observed today;
   * 'timing': node:http's own answer depends on timing, on either side (no
   * difference in reading); 'bug': a known bug outside the reader, reported.
   */
  kind: 'deliberate' | 'pending' | 'timing' | 'bug';
  /** Why gatehouse answers otherwise, and how. */
  reason: string;
  /** True when the request is one this entry is about and gatehouse's outcome is the one it describes. */
  explains(c: Case, ref: Outcome, gh: Outcome): boolean;
}

/** llhttp parsed the requests that gatehouse's fast path read as it did (the reference's requests start with them). */
function readTheSame(c: Case, ref: Outcome): boolean {
  const parsed = ref.parsed ?? [];
  return c.reads.fast.every((f, i) => parsed[i] !== undefined && JSON.stringify(parsed[i]) === JSON.stringify(f.parsed));
}

/** Gatehouse's answers to the requests its fast path read, as it would give them. */
function fastAnswers(c: Case): Answer[] {
  return c.reads.fast.filter((f) => f.next <= c.bytes.length).flatMap(fastAnswer);
}

/** The request ends the connection, as llhttp reads it (Connection or Proxy-Connection: close; HTTP/1.0 without keep-alive). */
function endsConnection(p: Parsed): boolean {
  let close = false;
  let keepAlive = false;
  for (let i = 0; i < p.rawHeaders.length; i += 2) {
    const name = p.rawHeaders[i]!.toLowerCase();
    if (name !== 'connection' && name !== 'proxy-connection') continue;
    for (const token of p.rawHeaders[i + 1]!.toLowerCase().split(',')) {
      if (token.trim() === 'close') close = true;
      if (token.trim() === 'keep-alive') keepAlive = true;
    }
  }
  return close || (p.httpVersion === '1.0' && !keepAlive);
}

/** Its header's values, joined as node:http joins them (', '), or undefined. */
function headerOf(p: Parsed, name: string): string | undefined {
  const values: string[] = [];
  for (let i = 0; i < p.rawHeaders.length; i += 2) if (p.rawHeaders[i]!.toLowerCase() === name) values.push(p.rawHeaders[i + 1]!);
  return values.length === 0 ? undefined : values.join(', ');
}

/** An upgrade (Upgrade, and `upgrade` among the Connection or Proxy-Connection options) as llhttp reads it: 'body' when it has one. */
function upgradeOf(p: Parsed): 'body' | 'bodiless' | null {
  const options = [headerOf(p, 'connection'), headerOf(p, 'proxy-connection')].join(',').toLowerCase().split(',').map((o) => o.trim());
  if (headerOf(p, 'upgrade') === undefined || !options.includes('upgrade')) return null;
  const length = headerOf(p, 'content-length');
  return headerOf(p, 'transfer-encoding') !== undefined || (length !== undefined && Number(length) > 0) ? 'body' : 'bodiless';
}

/** What the app sees of a request read again without `upgrade` among its Connection options (request-intake.ts). */
function withoutUpgradeOption(a: Answer): Answer {
  if (a.view === undefined) return a;
  const headers = { ...a.view.headers };
  for (const key of ['HTTP_CONNECTION', 'HTTP_PROXY_CONNECTION']) {
    if (headers[key] === undefined) continue;
    const rest = headers[key]!.split(',').map((o) => o.trim()).filter((o) => o !== '' && !o.toLowerCase().includes('upgrade'));
    if (rest.length === 0) delete headers[key];
    else headers[key] = rest.join(', ');
  }
  return { ...a, view: { ...a.view, headers } };
}

/**
 * Gatehouse's answers to the requests its fast path read, up to the one
 * after which it closes: a refusal (always with Connection: close) or a
 * request that asked to close. Requests read after it are never answered.
 */
function fastUntilClose(c: Case): { answers: Answer[]; closes: boolean } {
  const answers: Answer[] = [];
  for (const f of c.reads.fast) {
    if (f.next > c.bytes.length) break;
    answers.push(...fastAnswer(f));
    if (answers[answers.length - 1]!.view === undefined || f.close) return { answers, closes: true };
  }
  return { answers, closes: false };
}

/** A refusal node:http writes by itself (no app saw the request). */
function isRefusal(a: Answer | undefined): boolean {
  return a !== undefined && a.view === undefined && a.status >= 400;
}

/** How many of `answers`, from the first, are the `decided` ones. */
function decidedPrefix(answers: Answer[], decided: Array<Answer | null>): number {
  let n = 0;
  const same = (x: Answer, y: Answer) => differs({ answers: [x], end: 'open' }, { answers: [y], end: 'open' }) === null;
  while (n < answers.length && n < decided.length && decided[n] !== null && same(decided[n]!, answers[n]!)) n++;
  return n;
}

/**
 * Whether `o` is an outcome node:http may give on a connection where the
 * reference (`ref`, with its decided answers) read the same bytes: the
 * answers it decided, in order, as far as they were written, then at most a
 * refusal of a later request (the same as the reference's, if it wrote
 * one), and the connection closed, as the reference's. See
 * unwritten-answers-dropped.
 */
function nodeMay(o: Outcome, ref: Outcome): boolean {
  const decided = ref.decided ?? [];
  if (o.end !== 'closed' || ref.end !== 'closed') return false;
  const n = decidedPrefix(o.answers, decided);
  if (n === o.answers.length) return true;
  if (n !== o.answers.length - 1 || !isRefusal(o.answers[n])) return false;
  // The reference's own refusal, if it wrote one, is the same.
  const m = decidedPrefix(ref.answers, decided);
  const theirs = m === ref.answers.length - 1 && isRefusal(ref.answers[m]) ? ref.answers[m]! : null;
  return theirs === null || theirs.status === o.answers[n]!.status;
}

/**
 * Every known way gatehouse answers otherwise than llhttp (node:http with
 * the same limits), with the reason. Entries of kind 'pending' record what
 * is observed today for an item being changed.
 */
export const DIFFERENCES: readonly Difference[] = [
  {
    id: 'refused-at-once',
    kind: 'deliberate',
    reason:
      'What came of a head can never be read (request-head.ts\'s unreadableHead): its first line is no HTTP/1 ' +
      'request line, or a line ends in a bare LF or CR. gatehouse answers 400 and closes at once, without waiting ' +
      'for the rest; llhttp refuses those at once too, except an HTTP/0.9 line (`GET /\\r\\n`), for which it ' +
      'waits for the blank line and then reads a request (that gatehouse refuses with 400 as well: see refusalOf). ' +
      'After pipelined requests, gatehouse answers them first; node:http writes its 400 in place of the answers ' +
      'not yet written.',
    explains: (c, ref, gh) =>
      c.reads.then === 'refused' &&
      (ref.end === 'open' || (ref.end === 'closed' && isRefusal(ref.answers[ref.answers.length - 1]))) &&
      differs({ answers: [...fastAnswers(c), { status: 400 }], end: 'closed' }, gh) === null,
  },
  {
    id: 'target-too-long-at-once',
    kind: 'deliberate',
    reason:
      'A request line whose target reaches max_header_size: the fast path answers 414 and closes as soon as it ' +
      'has that much of the target (uri-too-long.ts), as nginx does when a line does not fit its buffer, whatever ' +
      'comes after. llhttp (node:http with gatehouse\'s 414) answers the same when that is all it met, but it ' +
      'reads on to the end of what arrived and may refuse something there first (400: a byte no target holds, a ' +
      'bad version, or a method or raw bytes it reads only under a stand-in line, which a line not yet whole ' +
      'cannot have). After pipelined requests, gatehouse answers them first; node:http writes its refusal in ' +
      'place of the answers not yet written.',
    explains: (c, ref, gh) =>
      c.reads.then === 'too-long' && readTheSame(c, ref) && ref.end === 'closed' && isRefusal(ref.answers[ref.answers.length - 1]) &&
      differs({ answers: [...fastAnswers(c), { status: 414 }], end: 'closed' }, gh) === null,
  },
  {
    id: 'waits-for-line',
    kind: 'deliberate',
    reason:
      'A head not yet whole whose first bytes llhttp already refuses (no method in its table starts so, say): ' +
      'llhttp answers 400 at once; the fast path waits for the line to end, then refuses it (400) or hands it to ' +
      'llhttp, which does; a client that sends nothing more gets 408 at header_timeout. (node:http writes its ' +
      'refusal in place of the answers not yet written; gatehouse answers the requests before it.)',
    explains: (c, ref, gh) =>
      c.reads.then === 'waiting' &&
      ref.end === 'closed' &&
      isRefusal(ref.answers[ref.answers.length - 1]) &&
      differs({ answers: fastAnswers(c), end: 'timeout' }, gh) === null,
  },
  {
    id: 'data-after-close',
    kind: 'deliberate',
    reason:
      'Bytes after a request that ends the connection (Connection or Proxy-Connection: close, HTTP/1.0 without ' +
      'keep-alive): RFC 9112 §9.6 says they are not requests. gatehouse answers every request before them, the ' +
      'last with Connection: close, and closes without reading the rest, on its fast path and on node:http\'s ' +
      '(where llhttp\'s "Data after `Connection: close`" error is ignored); node:http alone writes a 400 at once ' +
      'in place of the answers not yet written.',
    explains: (c, ref, gh) => {
      const decided = ref.decided ?? [];
      if (gh.end !== 'closed' || ref.end !== 'closed' || !isRefusal(ref.answers[ref.answers.length - 1])) return false;
      const last = (ref.parsed ?? [])[decided.length - 1];
      if (last === undefined || !endsConnection(last) || decided.some((d) => d === null)) return false;
      return decidedPrefix(gh.answers, decided) === gh.answers.length && gh.answers.length === decided.length;
    },
  },
  {
    id: 'handed-over-after-answers',
    kind: 'deliberate',
    reason:
      'Requests the fast path reads, then a request it leaves to node:http: gatehouse answers the requests it read, ' +
      'then hands the connection over, and node:http reads the rest as it would on a connection of its own. On ' +
      'one node:http connection, a refusal of a later pipelined request (400 from llhttp) is written at once in ' +
      'place of the answers not yet written, and those requests, already read, are never answered; in gatehouse ' +
      'they are. llhttp must have parsed every request the fast path read as it did, and node:http\'s part must be ' +
      'what node:http may answer to the rest (see unwritten-answers-dropped).',
    explains: (c, ref, gh) => {
      const rest = ref.rest;
      if (c.reads.fast.length === 0 || c.reads.then !== 'llhttp' || rest === undefined || !readTheSame(c, ref)) return false;
      const fast = fastAnswers(c);
      if (differs({ answers: gh.answers.slice(0, fast.length), end: gh.end }, { answers: fast, end: gh.end }) !== null) return false;
      const tail: Outcome = { answers: gh.answers.slice(fast.length), end: gh.end };
      return differs(rest, tail) === null || nodeMay(tail, rest);
    },
  },
  {
    id: 'fast-answers-then-close',
    kind: 'deliberate',
    reason:
      'Requests the fast path reads, up to one after which gatehouse closes (a refusal such as 400 for a `..` ' +
      'path, sent with Connection: close), with more bytes after them that llhttp refuses: node:http writes that ' +
      'refusal at once in place of the answers not yet written and closes; gatehouse answers every request it ' +
      'read, up to the one it closes after, and never reads the rest. llhttp must have parsed the requests the ' +
      'fast path read as it did.',
    explains: (c, ref, gh) => {
      const fast = fastUntilClose(c);
      const last = ref.answers[ref.answers.length - 1];
      return (
        fast.closes && readTheSame(c, ref) && ref.end === 'closed' && isRefusal(last) &&
        differs({ answers: fast.answers, end: 'closed' }, gh) === null
      );
    },
  },
  {
    id: 'chunk-extension-whitespace',
    kind: 'deliberate',
    reason:
      'A chunk extension with whitespace around its `;` or `=` (`5; name=value`, BWS in RFC 9112 §7.1.1): llhttp ' +
      'refuses the body (400) and closes; gatehouse\'s fast path reads it, as nginx does (the extensions dropped, ' +
      'as llhttp drops well-formed ones: chunked-body.ts), and the app answers it. llhttp must have parsed the ' +
      'requests up to it as the fast path did; gatehouse answers every request its fast path read (what it hands ' +
      'over after them is read as on any connection). node:http, on what the fast path hands over, still refuses one.',
    explains: (c, ref, gh) => {
      const spaced = c.reads.fast.findIndex((f) => f.spacedExtension);
      const parsed = ref.parsed ?? [];
      if (spaced < 0 || ref.end !== 'closed' || !isRefusal(ref.answers[ref.answers.length - 1])) return false;
      if (!c.reads.fast.slice(0, spaced + 1).every((f, k) => JSON.stringify(parsed[k]) === JSON.stringify(f.parsed))) return false;
      const fast = fastUntilClose(c);
      const n = fast.answers.length;
      if (differs({ answers: fast.answers, end: 'open' }, { answers: gh.answers.slice(0, n), end: 'open' }) !== null) return false;
      if (fast.closes) return gh.answers.length === n && gh.end === 'closed';
      return c.reads.then !== null || (gh.answers.length === n && gh.end !== 'closed');
    },
  },
  {
    id: 'unwritten-answers-dropped',
    kind: 'timing',
    reason:
      'When llhttp refuses a pipelined request (400, 431...), node:http writes the refusal at once in place of the ' +
      'answers not yet written and closes, or, when an answer is being written at that moment, closes without it: ' +
      'either way the requests read before it and not yet answered are never answered. How many answers go out ' +
      'first depends on timing (the reference answers in the test process, gatehouse\'s app in Python), so on ' +
      'node:http gatehouse\'s answers must be the first of those the reference decided to give for what llhttp ' +
      'read, then at most the same refusal, and the connection closed. The same holds for a chunked body llhttp ' +
      'refuses on gatehouse\'s fast path (chunked-body.ts), which does what node:http does on that error.',
    explains: (c, ref, gh) => ((c.reads.fast.length === 0 && c.reads.then === 'llhttp') || c.reads.then === 'body-fault') && nodeMay(gh, ref),
  },
  {
    id: 'declined-upgrade-read-on',
    kind: 'deliberate',
    reason:
      'An upgrade request (Upgrade, and `upgrade` among the Connection or Proxy-Connection options) that its route ' +
      'does not switch (an app that is not ASGI, or no WebSocket): gatehouse answers it and goes on with the ' +
      'connection, as nginx does; node:http with no \'upgrade\' listener answers it and then reads nothing more ' +
      '(llhttp stays paused for the new protocol). One with a body is never switched (a WebSocket handshake has ' +
      'none; `curl --http2 -d` sends such a POST with Upgrade: h2c): gatehouse reads it again without the ' +
      'Connection options that hold `upgrade`, which the app then does not see (node:http may not even answer it: ' +
      'it waits for a body llhttp no longer reads). Answers up to it must be the same.',
    explains: (c, ref, gh) => {
      const parsed = ref.parsed ?? [];
      const last = parsed[parsed.length - 1];
      const upgrade = last === undefined ? null : upgradeOf(last);
      if (upgrade === null) return false;
      if (upgrade === 'body' && ref.end === 'open' && ref.answers.length === parsed.length - 1) {
        return differs({ answers: ref.answers, end: 'open' }, { answers: gh.answers.slice(0, ref.answers.length), end: 'open' }) === null;
      }
      if (ref.answers.length !== parsed.length) return false;
      const answer = ref.answers[ref.answers.length - 1]!;
      const expected = [...ref.answers.slice(0, -1), upgrade === 'body' ? withoutUpgradeOption(answer) : answer];
      // A request that ends the connection (HTTP/1.0, Connection: close) ends it on both: then all must be the same.
      if (ref.end === 'closed') return differs({ answers: expected, end: 'closed' }, gh) === null;
      return ref.end === 'open' && differs({ answers: expected, end: 'open' }, { answers: gh.answers.slice(0, expected.length), end: 'open' }) === null;
    },
  },
  {
    id: 'continue-before-body-fault',
    kind: 'deliberate',
    reason:
      'An Expect: 100-continue request with a target llhttp reads only under a stand-in line (raw UTF-8), whose ' +
      'chunked body came with its head (the client did not wait) and is faulty: the fast path writes the 100 ' +
      'Continue once it has the head, then reads the body and refuses it (400 or 431, and close); node:http, given ' +
      'the stand-in, meets the fault before it writes a 100 and writes only the refusal. A 100 before a final ' +
      'answer is always allowed (RFC 9110 §15.2.1); with a plain target both write the 100 and then the refusal.',
    explains: (c, ref, gh) => {
      const i = extraContinue(gh.answers, ref.answers);
      return c.reads.then === 'body-fault' && i >= 0 && isRefusal(gh.answers[gh.answers.length - 1]) && differs(ref, { answers: without(gh.answers, i), end: gh.end }) === null;
    },
  },
  {
    id: 'continue-skipped-once-answered',
    kind: 'timing',
    reason:
      'A request with Expect: 100-continue pipelined behind one still being answered: gatehouse writes its 100 ' +
      'Continue when its turn on the connection comes, and not at all if its final answer is ready by then ' +
      '(RFC 9110 §10.1.1 allows that); node:http writes it when it reads the request, and (20.20) after the ' +
      'final answer\'s head when that answer has a Buffer body, which a client takes for its next answer.',
    explains: (c, ref, gh) => {
      const i = extraContinue(ref.answers, gh.answers);
      // Only for a request node:http read, after those the fast path answered.
      return i >= 0 && i >= c.reads.fast.length && differs({ answers: without(ref.answers, i), end: ref.end }, gh) === null;
    },
  },
];

/** Where `more`, one answer longer than `fewer`, has a 100 Continue that `fewer` has not (-1: it has none). */
function extraContinue(more: Answer[], fewer: Answer[]): number {
  return more.length !== fewer.length + 1 ? -1 : more.findIndex((a, k) => a.status === 100 && fewer[k]?.status !== 100);
}

function without(answers: Answer[], i: number): Answer[] {
  return answers.filter((_, k) => k !== i);
}

export type Verdict = { kind: 'same' } | { kind: 'documented'; difference: Difference } | { kind: 'discrepancy'; why: string };

/** The same, a documented difference (the first entry of `table` that explains gatehouse's outcome), or a discrepancy. */
export function judge(c: Case, ref: Outcome, gh: Outcome, table: readonly Difference[] = DIFFERENCES): Verdict {
  const why = differs(ref, gh);
  if (why === null) return { kind: 'same' };
  for (const d of table) if (d.explains(c, ref, gh)) return { kind: 'documented', difference: d };
  return { kind: 'discrepancy', why };
}
