/**
 * What the WSGI conformance files share (test/wsgi-environ.test.ts,
 * wsgi-input, wsgi-response and wsgi-errors): a real gatehouse process
 * serving test/apps/wsgi_cases.py:dispatch (one Python app, a case per first
 * path segment) with 2 workers, started by serveWsgiCases() before a file's
 * tests and stopped after them, and the clients that speak to it: fetch where
 * the parsed response is what matters; raw sockets where the bytes on the
 * wire are (chunked framing, bodies that must not be there, truncation).
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS } from './gatehouse.js';
import { launch, type Server } from './launch.js';
import { sleep } from './wait.js';

export const APP = `${APPS}/wsgi_cases.py:dispatch`;
export const T = { timeout: 10_000 };

/** The server under test (set before the tests run). */
export let gh: Server;
/** Private scratch space: log files for close() tracking, files to serve. */
export let scratch: string;
/** TMPDIR of the server under test: where it spills large request bodies. */
export let bodyTmp: string;

/** Starts the shared server (and its scratch space) before the tests of the file that calls it; stops it after them. */
export function serveWsgiCases(): void {
  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'gatehouse-wsgi-test-'));
    bodyTmp = join(scratch, 'tmp');
    mkdirSync(bodyTmp);
    gh = await launch([APP, '--workers', '2', '--graceful-timeout', '2'], { env: { TMPDIR: bodyTmp } });
    // startGatehouse returns once the first worker is up; wait for both.
    await gh.waitFor(/Booting worker with pid: \d+[\s\S]*Booting worker with pid: \d+/);
  });

  after(async () => {
    await gh?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });
}

export type Environ = Record<string, unknown>;

export async function getEnviron(path: string, init?: RequestInit): Promise<Environ> {
  const res = await fetch(`${gh.url}${path}`, init);
  assert.equal(res.status, 200, `GET ${path}: ${await res.clone().text()}`);
  return (await res.json()) as Environ;
}

/** Polls `check` until it returns a value other than undefined; fails after `ms`. */
export async function eventually<V>(what: string, ms: number, check: () => V | undefined): Promise<V> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

export interface RawReply {
  data: Buffer;
  /** The server ended or reset the connection (false: we stopped reading first). */
  closedByServer: boolean;
}

/** Sends raw bytes, collects what comes back until the server closes, `until` says so, or `ms` pass. */
/** `target`: a port on 127.0.0.1, or a unix socket's path. */
export function rawRequest(target: number | string, payload: string | Buffer, opts: { until?: (data: Buffer) => boolean; ms?: number } = {}): Promise<RawReply> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const sock = typeof target === 'number' ? connect(target, '127.0.0.1') : connect(target);
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ data: Buffer.concat(chunks), closedByServer: closed });
    };
    const timer = setTimeout(() => finish(false), opts.ms ?? 3000);
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      if (opts.until?.(Buffer.concat(chunks))) finish(false);
    });
    sock.on('end', () => finish(true));
    sock.on('error', () => finish(true));
    sock.on('close', () => finish(true));
    sock.write(typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload);
  });
}

export interface ParsedResponse {
  statusLine: string;
  status: number;
  headers: Array<[string, string]>;
  body: Buffer;
  framing: 'chunked' | 'length' | 'close' | 'none';
  /** The framing says the body is complete (chunked: the 0-size chunk; length: all bytes). */
  complete: boolean;
  /** Bytes after this response (the next pipelined response). */
  rest: Buffer;
}

export function header(r: ParsedResponse, name: string): string | undefined {
  const values = r.headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
  return values.length === 0 ? undefined : values.join(', ');
}

/** Parses one HTTP/1.x response from raw bytes; null when even the head is incomplete. */
export function parseResponse(buf: Buffer, opts: { head?: boolean; closed?: boolean } = {}): ParsedResponse | null {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0) return null;
  const lines = buf.subarray(0, headEnd).toString('latin1').split('\r\n');
  const statusLine = lines[0] ?? '';
  const status = Number(statusLine.split(' ')[1]);
  const headers: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    headers.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
  const after = buf.subarray(headEnd + 4);
  const base = { statusLine, status, headers };
  if (opts.head || (status >= 100 && status < 200) || status === 204 || status === 304) {
    return { ...base, body: Buffer.alloc(0), framing: 'none', complete: true, rest: after };
  }
  const te = headers.find(([n]) => n.toLowerCase() === 'transfer-encoding')?.[1];
  if (te !== undefined && /chunked/i.test(te)) {
    const parts: Buffer[] = [];
    let pos = 0;
    for (;;) {
      const eol = after.indexOf('\r\n', pos);
      if (eol < 0) break;
      const size = parseInt(after.subarray(pos, eol).toString('latin1').split(';')[0]!, 16);
      if (Number.isNaN(size)) break;
      if (size === 0) {
        if (after.length >= eol + 4 && after.subarray(eol + 2, eol + 4).toString() === '\r\n') {
          return { ...base, body: Buffer.concat(parts), framing: 'chunked', complete: true, rest: after.subarray(eol + 4) };
        }
        break;
      }
      const dataEnd = eol + 2 + size;
      parts.push(after.subarray(eol + 2, Math.min(dataEnd, after.length)));
      if (after.length < dataEnd + 2) break;
      pos = dataEnd + 2;
    }
    return { ...base, body: Buffer.concat(parts), framing: 'chunked', complete: false, rest: Buffer.alloc(0) };
  }
  const cl = headers.find(([n]) => n.toLowerCase() === 'content-length')?.[1];
  if (cl !== undefined) {
    const n = Number(cl);
    return { ...base, body: after.subarray(0, n), framing: 'length', complete: after.length >= n, rest: after.subarray(n) };
  }
  return { ...base, body: after, framing: 'close', complete: opts.closed === true, rest: Buffer.alloc(0) };
}

/** Parses pipelined responses, one per entry of `methods` (HEAD responses have no body). */
export function parseAll(buf: Buffer, methods: string[]): ParsedResponse[] {
  const out: ParsedResponse[] = [];
  let rest = buf;
  for (const m of methods) {
    const r = parseResponse(rest, { head: m === 'HEAD' });
    assert.ok(r, `response #${out.length + 1} (${m}) is missing; got:\n${buf.toString('latin1')}`);
    assert.match(r.statusLine, /^HTTP\/1\.[01] \d{3}/, `response #${out.length + 1} starts with a status line`);
    assert.ok(r.complete, `response #${out.length + 1} is complete`);
    out.push(r);
    rest = r.rest;
  }
  assert.equal(rest.toString('latin1'), '', 'nothing after the last response');
  return out;
}

export async function expectServing(url = gh.url): Promise<void> {
  const res = await fetch(`${url}/one`, { signal: AbortSignal.timeout(3000) });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'hello, world');
}

export function get(path: string, extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: test\r\n${extra}\r\n`;
}

/** Same bytes as wsgi_cases.pattern(size): what its /bytesio case streams. */
export function pattern(size: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i <= Math.floor(size / 32); i++) parts.push(createHash('sha256').update(String(i)).digest());
  return Buffer.concat(parts).subarray(0, size);
}
