/**
 * What "gatehouse reads a request head as llhttp does" compares
 * (test/request-head-fuzz.test.ts and test/request-head-fixtures.test.ts;
 * the other head-*.ts modules say how each side's outcome is worked out):
 * what one exchange on a connection ended with, on the reference (node:http,
 * llhttp) or on gatehouse, as the answers it got and how the connection
 * ended; and differs, why two outcomes are not the same.
 */

/** What the app saw of one request, in environ's terms (test/apps/echo_head.py sends the same fields). */
export interface AppView {
  method: string;
  /** RAW_URI */
  target: string;
  /** PATH_INFO */
  path: string;
  query: string;
  /** SERVER_PROTOCOL */
  protocol: string;
  /** Every HTTP_* key. */
  headers: Record<string, string>;
  content_type: string | null;
  content_length: string | null;
  /** latin-1 */
  body: string;
}

/** One answer on the connection: its status and, when the app (or the reference's stand-in) took the request, what it saw. */
export interface Answer {
  status: number;
  view?: AppView;
}

/**
 * How the exchange ended: the connection still open (waiting for more, or
 * keep-alive), closed by the server, or answered 408 because the head was not
 * whole within the header timeout (only gatehouse's is short in these tests;
 * the 408 itself is not in `answers`).
 */
export type End = 'open' | 'closed' | 'timeout';

export interface Outcome {
  answers: Answer[];
  end: End;
  /** The reference's only: what llhttp parsed, request by request (not compared: the answers say it). */
  parsed?: Parsed[];
  /**
   * The reference's only: the answers it decided to give, in request order,
   * whether or not node:http got to write them (null: a body still arriving).
   */
  decided?: Array<Answer | null>;
  /**
   * The reference's only, when gatehouse's fast path reads some requests and
   * hands the rest to node:http: the reference's outcome on those remaining
   * bytes alone, on a connection of their own (what node:http makes of them
   * in gatehouse).
   */
  rest?: Outcome;
}

/** What node:http parsed of one request (the reference server records it). */
export interface Parsed {
  method: string;
  url: string;
  httpVersion: string;
  rawHeaders: string[];
}

/** Why two outcomes differ, or null when they are the same. */
export function differs(ref: Outcome, gh: Outcome): string | null {
  const n = Math.max(ref.answers.length, gh.answers.length);
  for (let i = 0; i < n; i++) {
    const a = ref.answers[i];
    const b = gh.answers[i];
    if (a === undefined) return `answer ${i + 1}: llhttp gave none, gatehouse ${describe(b!)}`;
    if (b === undefined) return `answer ${i + 1}: llhttp gave ${describe(a)}, gatehouse none`;
    if (a.status !== b.status) return `answer ${i + 1}: llhttp status ${a.status}, gatehouse ${b.status}`;
    if ((a.view === undefined) !== (b.view === undefined)) return `answer ${i + 1}: ${a.view === undefined ? 'only gatehouse' : 'only llhttp'} gave the request to the app`;
    if (a.view !== undefined) {
      const why = viewDiffers(a.view, b.view!);
      if (why !== null) return `answer ${i + 1}: ${why}`;
    }
  }
  // Both wait for the rest of a head: the reference's header timeout is only longer.
  const ends = new Set([ref.end, gh.end]);
  if (ref.end !== gh.end && !(ends.has('open') && ends.has('timeout'))) return `connection: llhttp ${ref.end}, gatehouse ${gh.end}`;
  return null;
}

function describe(a: Answer): string {
  return a.view === undefined ? String(a.status) : `${a.status} (${a.view.method} ${JSON.stringify(a.view.target)})`;
}

function viewDiffers(a: AppView, b: AppView): string | null {
  for (const key of ['method', 'target', 'path', 'query', 'protocol', 'content_type', 'content_length', 'body'] as const) {
    if (a[key] !== b[key]) return `${key}: llhttp ${JSON.stringify(a[key])}, gatehouse ${JSON.stringify(b[key])}`;
  }
  const names = new Set([...Object.keys(a.headers), ...Object.keys(b.headers)]);
  for (const name of [...names].sort()) {
    if (a.headers[name] !== b.headers[name]) return `${name}: llhttp ${JSON.stringify(a.headers[name])}, gatehouse ${JSON.stringify(b.headers[name])}`;
  }
  return null;
}
