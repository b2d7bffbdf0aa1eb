/**
 * Answers from memory for the fast path (fast-path.ts): a GET or HEAD that a
 * route answers without more than its head (Handler.answerFromMemory: hot
 * static files), as the bytes to write. An answer is reused for the same
 * request while what it came from is trusted, and its bytes are remade only
 * when the Date header changes, so a hot file costs a lookup and a write.
 */
import { STATUS_CODES, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { MemoryResponse } from '../http/handler.js';
import { parseTarget } from '../http/request-target.js';
import { hasBody, type ParsedHead } from './request-head.js';
import { hostName } from '../http/request-target.js';
import type { Router } from './router.js';
import { connectionLines, httpDate } from './response-lines.js';

/** An answer with its status line and headers as text (all but Date and Connection). */
export interface Prepared {
  answer: MemoryResponse;
  head: string;
  /** See MemoryResponse.reuseUntil. */
  until: number;
  /** The whole response as last written, for the Date and Connection it had. */
  wire: Buffer | null;
  wireDate: string;
  wireClose: boolean;
}

/** Request headers that make an answer particular to the request: never reused. */
const CONDITIONAL = ['if-none-match', 'if-modified-since', 'range', 'if-range', 'if-match', 'if-unmodified-since'] as const;
/** Answers kept for reuse at most; more and they are all dropped (a scan of many files should not grow memory). */
const MAX_RECENT = 1024;

export class MemoryAnswers {
  /** Answers worked out lately, by method, scheme, Host, target and Accept-Encoding. */
  private readonly recent = new Map<string, Prepared>();

  /** The bytes of answers a handler hands out again (the same object: a cache hit within one second), made once. */
  private readonly prepared = new WeakMap<MemoryResponse, Prepared>();

  /** Some route can answer from memory: without one, requests go straight to the handler path, not routed twice. */
  private readonly any: boolean;

  constructor(private readonly router: Router) {
    this.any = router.entries.some((e) => e.handler.answerFromMemory !== undefined);
  }

  /** The answer to `head` from memory; null when the route has none (node:http's request path then). */
  answer(head: ParsedHead): Prepared | null | Promise<Prepared | null> {
    // A request with a body (a GET may have one) goes the long way, where its body is read and dropped:
    // answered from here, its body would be read as the next request.
    if (!this.any || (head.method !== 'GET' && head.method !== 'HEAD') || hasBody(head)) return null;
    const h = head.headers;
    const key = conditional(h) ? null : `${head.method} ${head.scheme} ${h.host} ${head.url} ${h['accept-encoding'] ?? ''}`;
    if (key !== null) {
      const known = this.recent.get(key);
      if (known !== undefined && performance.now() < known.until && (known.answer.reusableFor?.(h) ?? true)) return known;
    }
    const target = parseTarget(head.url);
    if (target === null) return null;
    const match = this.router.match(hostName(h.host), target.path);
    const handler = match?.entry.handler;
    // An internal route's 404 is request-intake.ts's.
    if (handler?.answerFromMemory === undefined || match!.entry.internal) return null;
    const answer = handler.answerFromMemory(head, target.path.slice(match!.prefix.length));
    if (answer instanceof Promise) return answer.then((a) => (a === null ? null : this.prepare(a)));
    if (answer === null) return null;
    const prepared = this.prepare(answer);
    if (key !== null && answer.reuseUntil !== undefined) {
      if (this.recent.size >= MAX_RECENT) this.recent.clear();
      this.recent.set(key, prepared);
    }
    return prepared;
  }

  private prepare(answer: MemoryResponse): Prepared {
    let prepared = this.prepared.get(answer);
    if (prepared === undefined) this.prepared.set(answer, (prepared = prepare(answer)));
    // A handler may hand out the same answer with a later reuseUntil (static-files.ts does).
    else prepared.until = answer.reuseUntil ?? 0;
    return prepared;
  }
}

function conditional(h: IncomingHttpHeaders): boolean {
  for (const name of CONDITIONAL) if (h[name] !== undefined) return true;
  return false;
}

function prepare(answer: MemoryResponse): Prepared {
  let head = `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? ''}\r\n`;
  for (const name in answer.headers) {
    const value = answer.headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) head += `${name}: ${v}\r\n`;
    else head += `${name}: ${value}\r\n`;
  }
  return { answer, head, until: answer.reuseUntil ?? 0, wire: null, wireDate: '', wireClose: false };
}

/** The response's bytes: head (with Date and Connection as node:http writes them) and body, remade once a second. */
export function wire(p: Prepared, close: boolean, keepAlive: number): Buffer {
  const date = httpDate();
  if (p.wire === null || p.wireDate !== date || p.wireClose !== close) {
    const head = Buffer.from(`${p.head}Date: ${date}\r\n${connectionLines(close, keepAlive)}\r\n`, 'latin1');
    const body = p.answer.body;
    p.wire = body === null ? head : Buffer.concat([head, body]);
    p.wireDate = date;
    p.wireClose = close;
  }
  return p.wire;
}

/** A response header by name, any case (for the access log's %({Name}o)s). */
export function headerValue(headers: OutgoingHttpHeaders, name: string): number | string | string[] | undefined {
  const lower = name.toLowerCase();
  for (const key in headers) if (key.toLowerCase() === lower) return headers[key];
  return undefined;
}
