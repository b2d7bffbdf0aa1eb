/**
 * PEP 3333 conformance, end to end: a real gatehouse process serving
 * test/apps/wsgi_cases.py:dispatch (one Python app, a case per first path
 * segment), spoken to over real HTTP. fetch where the parsed response is what
 * matters; raw sockets where the bytes on the wire are (chunked framing,
 * bodies that must not be there, truncation).
 *
 * One server (2 workers) serves most tests. The client-disconnect tests get a
 * 1-worker server each, so a worker left stuck by a failure cannot starve the
 * other tests, and "the next request is served" really means the same worker.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS } from './helpers/gatehouse.js';
import { launch, type Server } from './helpers/launch.js';
import { deletedFiles } from './helpers/processes.js';
import { get as httpGet, type IncomingMessage } from 'node:http';

const APP = `${APPS}/wsgi_cases.py:dispatch`;
const T = { timeout: 10_000 };

let gh: Server;
/** Private scratch space: log files for close() tracking, files to serve. */
let scratch: string;
/** TMPDIR of the server under test: where it spills large request bodies. */
let bodyTmp: string;

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

// ---- helpers ------------------------------------------------------------------

type Environ = Record<string, unknown>;

async function getEnviron(path: string, init?: RequestInit): Promise<Environ> {
  const res = await fetch(`${gh.url}${path}`, init);
  assert.equal(res.status, 200, `GET ${path}: ${await res.clone().text()}`);
  return (await res.json()) as Environ;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function token(): string {
  return randomBytes(6).toString('hex');
}

/** Polls `check` until it returns a value other than undefined; fails after `ms`. */
async function eventually<V>(what: string, ms: number, check: () => V | undefined): Promise<V> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

function readLines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

/** Waits for the app to log `close`, then a little longer to be sure it is not logged twice. */
async function closeLog(file: string, ms = 4000): Promise<string[]> {
  await eventually(`close() to be logged in ${file}`, ms, () => (readLines(file).includes('close') ? true : undefined));
  await sleep(250);
  return readLines(file);
}

interface RawReply {
  data: Buffer;
  /** The server ended or reset the connection (false: we stopped reading first). */
  closedByServer: boolean;
}

/** Sends raw bytes, collects what comes back until the server closes, `until` says so, or `ms` pass. */
/** `target`: a port on 127.0.0.1, or a unix socket's path. */
function rawRequest(target: number | string, payload: string | Buffer, opts: { until?: (data: Buffer) => boolean; ms?: number } = {}): Promise<RawReply> {
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

interface RawResponse {
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

function header(r: RawResponse, name: string): string | undefined {
  const values = r.headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
  return values.length === 0 ? undefined : values.join(', ');
}

/** Parses one HTTP/1.x response from raw bytes; null when even the head is incomplete. */
function parseResponse(buf: Buffer, opts: { head?: boolean; closed?: boolean } = {}): RawResponse | null {
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
function parseAll(buf: Buffer, methods: string[]): RawResponse[] {
  const out: RawResponse[] = [];
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

async function expectServing(url = gh.url): Promise<void> {
  const res = await fetch(`${url}/one`, { signal: AbortSignal.timeout(3000) });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'hello, world');
}

function get(path: string, extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: test\r\n${extra}\r\n`;
}

// ---- environ ------------------------------------------------------------------------

test('environ: every key PEP 3333 requires is present, with the right type and value', T, async () => {
  const env = await getEnviron('/environ/x?a=1');
  assert.equal(env.REQUEST_METHOD, 'GET');
  assert.equal(env.SCRIPT_NAME, '');
  assert.equal(env.PATH_INFO, '/environ/x');
  assert.equal(env.QUERY_STRING, 'a=1');
  assert.equal(typeof env.SERVER_NAME, 'string');
  assert.ok((env.SERVER_NAME as string).length > 0, 'SERVER_NAME is not empty');
  assert.equal(env.SERVER_PORT, String(gh.port));
  assert.equal(env.SERVER_PROTOCOL, 'HTTP/1.1');
  assert.deepEqual(env._version, { type: 'tuple', value: [1, 0] });
  assert.equal(env['wsgi.url_scheme'], 'http');
  const keys = env._keys as string[];
  for (const k of ['wsgi.input', 'wsgi.errors', 'wsgi.version', 'wsgi.multithread', 'wsgi.multiprocess', 'wsgi.run_once']) {
    assert.ok(keys.includes(k), `${k} is in environ`);
  }
  assert.deepEqual(env._input_methods, ['read', 'readline', 'readlines', '__iter__']);
  assert.deepEqual(env._errors_methods, ['write', 'writelines', 'flush']);
  assert.deepEqual(env['_wsgi.multithread'], { type: 'bool', value: false });
  assert.deepEqual(env['_wsgi.multiprocess'], { type: 'bool', value: true }, 'two worker processes run the app');
  assert.deepEqual(env['_wsgi.run_once'], { type: 'bool', value: false });
  assert.deepEqual(env['_wsgi.input_terminated'], { type: 'bool', value: true });
  assert.equal(env._file_wrapper, true, 'wsgi.file_wrapper is callable');
  assert.deepEqual(env._non_str_keys, [], 'all keys are native str');
  assert.deepEqual(env._non_str_cgi, [], 'all CGI variables are native str');
});

test('environ: PATH_INFO is percent-decoded as latin-1 (%2F included), QUERY_STRING stays raw', T, async () => {
  const env = await getEnviron('/environ/caf%C3%A9/a%2Fb%20c?q=caf%C3%A9&x=%2F+y');
  assert.equal(env.PATH_INFO, '/environ/caf\xc3\xa9/a/b c');
  assert.equal(env.QUERY_STRING, 'q=caf%C3%A9&x=%2F+y');
  assert.equal(env.SCRIPT_NAME, '');
});

test('environ: a %00 in the path stays inside PATH_INFO and cannot inject environ keys', T, async () => {
  const res = await fetch(`${gh.url}/environ/a%00REMOTE_USER%00admin`);
  if (res.status === 400) return; // refusing such a path is a fine answer too
  assert.equal(res.status, 200);
  const env = (await res.json()) as Environ;
  assert.equal(env.REMOTE_USER, undefined, 'the client must not be able to set REMOTE_USER');
  assert.equal(env.PATH_INFO, '/environ/a\x00REMOTE_USER\x00admin');
});

test('environ: CONTENT_TYPE and CONTENT_LENGTH carry no HTTP_ prefix and have no HTTP_ twins', T, async () => {
  const env = await getEnviron('/environ', { method: 'POST', body: 'payload', headers: { 'Content-Type': 'text/x-test' } });
  assert.equal(env.CONTENT_TYPE, 'text/x-test');
  assert.equal(env.CONTENT_LENGTH, '7');
  assert.equal(env.HTTP_CONTENT_TYPE, undefined);
  assert.equal(env.HTTP_CONTENT_LENGTH, undefined);
  assert.equal(env.body, 'payload');
});

test('environ: repeated headers are joined with ", ", a name with "_" is dropped, values arrive as latin-1', T, async () => {
  const reply = await rawRequest(
    gh.port,
    'GET /environ HTTP/1.1\r\nHost: test\r\nX-Multi: one\r\nX-Multi: two\r\n' +
      'X_Auth_User: 6.6.6.6\r\nX-Auth-User: alice\r\nX-Latin: caf\xc3\xa9\r\nConnection: close\r\n\r\n',
  );
  const r = parseResponse(reply.data, { closed: reply.closedByServer });
  assert.ok(r && r.complete, reply.data.toString('latin1'));
  assert.equal(r.status, 200);
  const env = JSON.parse(r.body.toString('utf8')) as Environ;
  assert.equal(env.HTTP_X_MULTI, 'one, two');
  assert.equal(env.HTTP_X_AUTH_USER, 'alice', 'X_Auth_User must not pose as X-Auth-User');
  assert.ok(!Object.values(env).some((v) => typeof v === 'string' && v.includes('6.6.6.6')), 'the underscore header reaches the app nowhere');
  assert.equal(env.HTTP_X_LATIN, 'caf\xc3\xa9');
});

test('environ: a chunked request body arrives whole, with CONTENT_LENGTH set', T, async () => {
  const reply = await rawRequest(
    gh.port,
    'POST /environ HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n' +
      '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
  );
  const r = parseResponse(reply.data, { closed: reply.closedByServer });
  assert.ok(r && r.complete, reply.data.toString('latin1'));
  assert.equal(r.status, 200);
  const env = JSON.parse(r.body.toString('utf8')) as Environ;
  assert.equal(env.body, 'hello world');
  assert.equal(env.CONTENT_LENGTH, '11');
  assert.equal(env.HTTP_TRANSFER_ENCODING, undefined);
  assert.equal(env.HTTP_CONTENT_LENGTH, undefined);
});

test('environ: SERVER_NAME/SERVER_PORT as gunicorn sets them: the TCP listener\'s address; on a unix socket, the Host of each request', T, async () => {
  const sock = join(scratch, 'server-name.sock');
  const s = await launch([`${APPS}/basic.py:echo_environ`, '--workers', '1', '-b', '127.0.0.1:0', '-b', `unix:${sock}`]);
  try {
    /** The environ of each response on one connection, in order. */
    const environs = async (target: number | string, requests: string[]): Promise<Environ[]> => {
      const reply = await rawRequest(target, requests.join(''));
      const out: Environ[] = [];
      let rest = reply.data;
      for (let r = parseResponse(rest); r !== null && r.complete; r = parseResponse(rest)) {
        out.push(JSON.parse(r.body.toString('utf8')) as Environ);
        rest = r.rest;
      }
      assert.equal(out.length, requests.length, reply.data.toString('latin1'));
      return out;
    };
    const withHost = (host: string) => `GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
    const noHost = 'GET / HTTP/1.0\r\n\r\n';
    const pick = (e: Environ) => [e.SERVER_NAME, e.SERVER_PORT];

    // One keep-alive connection: the Host changes from request to request, and so do they.
    const unix = await environs(sock, [withHost('example.com:8080'), withHost('example.com'), withHost('[::1]:9000'), withHost('[::1]'), noHost]);
    assert.deepEqual(unix.map(pick), [
      ['example.com', '8080'],
      ['example.com', '80'],
      ['::1', '9000'],
      ['::1', '80'],
      ['localhost', ''],
    ]);
    assert.equal(unix[0]!.HTTP_HOST, 'example.com:8080');

    // TCP: the address and port the connection came in on, whatever the Host says (the app reads that in HTTP_HOST).
    const tcp = await environs(s.port, [withHost('example.com:8080'), noHost]);
    assert.deepEqual(tcp.map(pick), [
      ['127.0.0.1', String(s.port)],
      ['127.0.0.1', String(s.port)],
    ]);
    assert.equal(tcp[0]!.HTTP_HOST, 'example.com:8080');
  } finally {
    await s.kill();
  }
});

// ---- wsgi.input ------------------------------------------------------------------------

/** Deterministic bytes: lines of many lengths, binary bytes, \r, NUL, a 100 KiB line, no final newline. */
function largeBody(size: number): Buffer {
  const buf = Buffer.alloc(size);
  let x = 0x2545f491;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const b = (x >>> 0) & 0xff;
    buf[i] = b % 97 === 0 ? 0x0a : b;
  }
  buf.fill(0x61, 200_000, 300_000); // one long line crossing any buffer boundary
  if (buf[size - 1] === 0x0a) buf[size - 1] = 0x62;
  return buf;
}

const SMALL_BODY = Buffer.from('first line\nsecond, longer line\n\n\r\nbinary \x00\xff\x80 bytes\nno newline at the end', 'latin1');
const LARGE_BODY = largeBody(640 * 1024 + 7);

function lineEnd(body: Buffer, pos: number, limit: number): number {
  const end = Math.min(body.length, pos + limit);
  const nl = body.indexOf(0x0a, pos);
  return nl >= 0 && nl < end ? nl + 1 : end;
}

/** What each read returns, as Python's io objects do it. */
function expectedPieces(op: string, body: Buffer, n: number): number[] {
  const out: number[] = [];
  let pos = 0;
  const read = (size: number) => {
    const len = Math.min(size, body.length - pos);
    out.push(len);
    pos += len;
  };
  const readline = (limit = Infinity) => {
    const end = lineEnd(body, pos, limit);
    out.push(end - pos);
    pos = end;
  };
  switch (op) {
    case 'read':
      read(Infinity);
      break;
    case 'readn':
      while (pos < body.length) read(n);
      break;
    case 'readline':
    case 'readlines':
    case 'iter':
      while (pos < body.length) readline();
      break;
    case 'readline_n':
      while (pos < body.length) readline(n);
      break;
    case 'mixed':
      read(10);
      readline();
      readline(5);
      read(100);
      read(0);
      readline();
      read(Infinity);
      break;
    default:
      throw new Error(op);
  }
  return out;
}

interface InputReport {
  pieces: number[];
  all_bytes: boolean;
  sha256: string;
  after_eof: number[];
  content_length: string | null;
  input_name: string | null;
  input_file_exists: boolean;
  input_terminated: unknown;
}

async function postInput(query: string, body: Buffer): Promise<InputReport> {
  const res = await fetch(`${gh.url}/input?${query}`, { method: 'POST', body: new Uint8Array(body) });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as InputReport;
}

const INPUT_OPS: Array<{ op: string; label: string; small: number; large: number }> = [
  { op: 'read', label: 'read()', small: 0, large: 0 },
  { op: 'readn', label: 'read(n) in a loop', small: 4, large: 65539 },
  { op: 'readline', label: 'readline() in a loop', small: 0, large: 0 },
  { op: 'readline_n', label: 'readline(n) in a loop', small: 5, large: 1000 },
  { op: 'readlines', label: 'readlines()', small: 0, large: 0 },
  { op: 'iter', label: 'iteration (for line in wsgi.input)', small: 0, large: 0 },
  { op: 'mixed', label: 'read(10), readline(), readline(5), read(100), read(0), readline(), read()', small: 0, large: 0 },
];

for (const { op, label, small, large } of INPUT_OPS) {
  test(`wsgi.input: ${label} on a small body and on a body > 256 KiB (spilled to a temp file)`, T, async () => {
    for (const [body, n, big] of [
      [SMALL_BODY, small, false],
      [LARGE_BODY, large, true],
    ] as const) {
      const what = `${op} on ${body.length} bytes`;
      const report = await postInput(`op=${op}&n=${n}`, body);
      assert.deepEqual(report.pieces, expectedPieces(op, body, n), `${what}: sizes of the pieces returned`);
      assert.equal(report.sha256, createHash('sha256').update(body).digest('hex'), `${what}: the bytes read`);
      assert.equal(report.all_bytes, true, `${what}: every read returns bytes`);
      assert.deepEqual(report.after_eof, [0, 0, 0], `${what}: read(), read(5), readline() at EOF return b''`);
      assert.equal(report.content_length, String(body.length), `${what}: CONTENT_LENGTH`);
      assert.equal(report.input_terminated, true, `${what}: wsgi.input_terminated`);
      if (big) {
        assert.ok(report.input_name?.startsWith(join(bodyTmp, 'gatehouse-body-')), `${what}: the body was spilled to a temp file (${report.input_name})`);
        assert.equal(report.input_file_exists, true);
      }
    }
  });
}

function spilledFiles(): string[] {
  return readdirSync(bodyTmp).filter((f) => f.startsWith('gatehouse-body-'));
}

test('wsgi.input: the temp file a large body was spilled to is gone after the request (also when the app fails)', T, async () => {
  const report = await postInput('op=read', LARGE_BODY);
  const name = report.input_name;
  assert.ok(name !== null && name.startsWith(bodyTmp), `the body went through a temp file (${name})`);
  assert.equal(report.input_file_exists, true, 'the file existed while the app ran');
  await eventually(`${name} to be removed`, 2000, () => (existsSync(name) ? undefined : true));

  const res = await fetch(`${gh.url}/input?op=read&fail=1`, { method: 'POST', body: new Uint8Array(LARGE_BODY) });
  assert.equal(res.status, 500);
  await res.arrayBuffer();
  await eventually('no gatehouse-body-* file left after a failed request', 2000, () => (spilledFiles().length === 0 ? true : undefined));
});

// ---- wsgi.errors -----------------------------------------------------------------------

test('wsgi.errors: text written there shows up in the server output on a line carrying the worker pid', T, async () => {
  const t = token();
  const { pid } = (await getEnviron(`/errors?token=${t}`)) as { pid: number };
  assert.ok(Number.isInteger(pid) && pid > 0);
  await gh.waitFor(new RegExp(`^\\[[^\\]]+\\] \\[${pid}\\] \\[[A-Z]+\\] wsgi\\.errors write ${t}$`, 'm'), 3000);
  await gh.waitFor(new RegExp(`^\\[[^\\]]+\\] \\[${pid}\\] \\[[A-Z]+\\] wsgi\\.errors writelines ${t}$`, 'm'), 3000);
});

// ---- write() ---------------------------------------------------------------------------

test('write(): the callable returned by start_response sends the body on its own', T, async () => {
  const res = await fetch(`${gh.url}/write?mode=alone`);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'one,two,');
});

test('write(): output mixed with a returned iterable (generator or list) arrives in order', T, async () => {
  for (const mode of ['gen', 'list']) {
    const res = await fetch(`${gh.url}/write?mode=${mode}`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'one,two,three,four', mode);
  }
});

// ---- exc_info ----------------------------------------------------------------------------

test('start_response(exc_info) before any output: the replacement status and headers win', T, async () => {
  const res = await fetch(`${gh.url}/excinfo-before`);
  assert.equal(res.status, 503);
  assert.equal(res.headers.get('x-second'), '2');
  assert.equal(res.headers.get('x-first'), null, 'the first headers are discarded');
  assert.equal(await res.text(), 'replacement body');
});

test('start_response(exc_info) after the headers went out re-raises: the client sees a truncated response', T, async () => {
  const reply = await rawRequest(gh.port, get('/excinfo-after'));
  assert.equal(reply.closedByServer, true, 'the connection is cut');
  const r = parseResponse(reply.data, { closed: true });
  assert.ok(r, `the headers went out: ${reply.data.toString('latin1')}`);
  assert.equal(r.status, 200);
  assert.equal(r.complete, false, `no clean end: ${reply.data.toString('latin1')}`);
  assert.ok(!reply.data.includes('MUST-NOT-BE-SENT'), 'start_response re-raised, so the app stopped');
  await expectServing();
});

// ---- close() ------------------------------------------------------------------------------

function logFile(): string {
  return join(scratch, `close-${token()}.log`);
}

test('close(): called exactly once on the iterable after a normal response', T, async () => {
  const log = logFile();
  const res = await fetch(`${gh.url}/close?mode=normal&log=${encodeURIComponent(log)}`);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'alpha,beta');
  assert.deepEqual(await closeLog(log), ['created', 'close']);
});

test('close(): called exactly once when the iterable raises mid-iteration', T, async () => {
  const log = logFile();
  const reply = await rawRequest(gh.port, get(`/close?mode=raise&log=${encodeURIComponent(log)}`));
  const r = parseResponse(reply.data, { closed: reply.closedByServer });
  assert.ok(r === null || !r.complete, `the response must not look complete: ${reply.data.toString('latin1')}`);
  assert.deepEqual(await closeLog(log), ['created', 'close']);
  await expectServing();
});

/** A 1-worker server of its own, stopped quickly even if its worker is stuck. */
async function withOwnServer(fn: (server: Server) => Promise<void>): Promise<void> {
  const server = await launch([APP, '--workers', '1', '--graceful-timeout', '1']);
  try {
    await fn(server);
  } finally {
    await server.stop();
  }
}

/** Opens a raw connection and runs `use` on it; the socket is destroyed afterwards. */
function withSocket(port: number, use: (sock: Socket, received: () => Buffer) => Promise<void>): Promise<void> {
  const sock = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  sock.on('data', (d: Buffer) => chunks.push(d));
  sock.on('error', () => {});
  return use(sock, () => Buffer.concat(chunks)).finally(() => sock.destroy());
}

test('close(): called exactly once when the client disconnects from a slow endless stream', { timeout: 15_000 }, async () => {
  await withOwnServer(async (server) => {
    const log = logFile();
    await withSocket(server.port, async (sock, received) => {
      sock.write(get(`/close?mode=stream&delay=0.05&log=${encodeURIComponent(log)}`));
      await eventually('a few chunks of the stream', 3000, () => (received().includes('tick 2') ? true : undefined));
    });
    assert.deepEqual(await closeLog(log), ['created', 'close']);
    await expectServing(server.url);
  });
});

test('close(): called exactly once when the client stops reading a fast endless stream, then disconnects', { timeout: 15_000 }, async () => {
  await withOwnServer(async (server) => {
    const log = logFile();
    await withSocket(server.port, async (sock, received) => {
      sock.write(get(`/close?mode=stream&size=65536&log=${encodeURIComponent(log)}`));
      await eventually('the stream to start', 3000, () => (received().includes('\r\n\r\n') ? true : undefined));
      sock.pause(); // let every buffer between the app and us fill up
      await sleep(500);
    });
    assert.deepEqual(await closeLog(log), ['created', 'close']);
    await expectServing(server.url);
  });
});

// ---- wsgi.file_wrapper -------------------------------------------------------------------

let bigFile: { path: string; data: Buffer } | null = null;
function threeMiB(): { path: string; data: Buffer } {
  if (bigFile === null) {
    const data = randomBytes(3 * 1024 * 1024);
    const path = join(scratch, 'random-3mib.bin');
    writeFileSync(path, data);
    bigFile = { path, data };
  }
  return bigFile;
}

test('wsgi.file_wrapper: a real 3 MiB file is served byte-exact, with Content-Length', T, async () => {
  const { path, data } = threeMiB();
  const res = await fetch(`${gh.url}/file?path=${encodeURIComponent(path)}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-length'), String(data.length));
  const got = Buffer.from(await res.arrayBuffer());
  assert.equal(got.length, data.length);
  assert.ok(got.equals(data), 'same bytes');
});

test('wsgi.file_wrapper to a client that reads nothing for a while: the file waits for it (no temp file), then arrives byte-exact', T, async () => {
  const { path, data } = threeMiB();
  const res = await new Promise<IncomingMessage>((resolve, reject) => httpGet(`${gh.url}/file?path=${encodeURIComponent(path)}`, resolve).on('error', reject));
  res.pause();
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(deletedFiles(gh.pid), [], 'no temp file while the client does not read');
  const chunks: Buffer[] = [];
  res.on('data', (d: Buffer) => chunks.push(d));
  const ended = new Promise((resolve) => res.on('end', resolve));
  res.resume();
  await ended;
  assert.ok(Buffer.concat(chunks).equals(data), 'same bytes');
});

test('wsgi.file_wrapper: a file seek()ed to an offset is served from that offset', T, async () => {
  const { path, data } = threeMiB();
  const offset = 1_000_001;
  const res = await fetch(`${gh.url}/file?path=${encodeURIComponent(path)}&offset=${offset}`);
  assert.equal(res.status, 200);
  const want = data.subarray(offset);
  const cl = res.headers.get('content-length');
  if (cl !== null) assert.equal(cl, String(want.length));
  const got = Buffer.from(await res.arrayBuffer());
  assert.equal(got.length, want.length);
  assert.ok(got.equals(want), 'same bytes, from the offset');
});

/** Same bytes as wsgi_cases.pattern(size). */
function pattern(size: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i <= Math.floor(size / 32); i++) parts.push(createHash('sha256').update(String(i)).digest());
  return Buffer.concat(parts).subarray(0, size);
}

test('wsgi.file_wrapper: a file-like that is not a real file (io.BytesIO) is streamed', T, async () => {
  const size = 300_001;
  const res = await fetch(`${gh.url}/bytesio?size=${size}`);
  assert.equal(res.status, 200);
  const got = Buffer.from(await res.arrayBuffer());
  assert.equal(got.length, size);
  assert.ok(got.equals(pattern(size)), 'same bytes');
});

// ---- framing -------------------------------------------------------------------------------

test('framing: a one-element list gets a Content-Length and is not chunked', T, async () => {
  const reply = await rawRequest(gh.port, get('/one', 'Connection: close\r\n'));
  const r = parseResponse(reply.data, { closed: reply.closedByServer });
  assert.ok(r && r.complete, reply.data.toString('latin1'));
  assert.equal(r.status, 200);
  assert.equal(header(r, 'content-length'), '12');
  assert.equal(header(r, 'transfer-encoding'), undefined);
  assert.equal(r.body.toString(), 'hello, world');
  assert.equal(r.rest.length, 0);
});

test('framing: a generator response on HTTP/1.1 is sent chunked and ends with 0\\r\\n\\r\\n', T, async () => {
  const reply = await rawRequest(gh.port, get('/gen'), { until: (d) => d.includes('\r\n0\r\n\r\n') });
  const text = reply.data.toString('latin1');
  const r = parseResponse(reply.data);
  assert.ok(r, text);
  assert.equal(r.status, 200);
  assert.match(header(r, 'transfer-encoding') ?? '', /^chunked$/i);
  assert.equal(header(r, 'content-length'), undefined);
  assert.ok(text.endsWith('\r\n0\r\n\r\n'), `terminating chunk: ${JSON.stringify(text)}`);
  assert.equal(r.complete, true);
  assert.equal(r.body.toString(), 'abcdef', 'an empty yield does not end the body early');
  assert.equal(reply.closedByServer, false, 'the connection stays open (keep-alive)');
});

test('framing: a generator response to an HTTP/1.0 request is delimited by closing the connection', T, async () => {
  const reply = await rawRequest(gh.port, 'GET /gen HTTP/1.0\r\n\r\n');
  assert.equal(reply.closedByServer, true, 'the server closes the connection');
  const r = parseResponse(reply.data, { closed: true });
  assert.ok(r, reply.data.toString('latin1'));
  assert.equal(r.status, 200);
  assert.equal(header(r, 'transfer-encoding'), undefined, 'no chunked encoding for HTTP/1.0');
  assert.equal(header(r, 'content-length'), undefined);
  assert.equal(r.body.toString(), 'abcdef');
});

test('HEAD: no body is sent, and the next pipelined request is answered correctly', T, async () => {
  const reply = await rawRequest(
    gh.port,
    'HEAD /one HTTP/1.1\r\nHost: test\r\n\r\nHEAD /gen HTTP/1.1\r\nHost: test\r\n\r\n' + get('/one', 'Connection: close\r\n'),
  );
  assert.equal(reply.closedByServer, true);
  const [a, b, c] = parseAll(reply.data, ['HEAD', 'HEAD', 'GET']);
  assert.equal(a!.status, 200);
  assert.equal(b!.status, 200);
  assert.equal(c!.status, 200);
  assert.equal(c!.body.toString(), 'hello, world');
  assert.ok(!reply.data.includes('abcdef') && reply.data.indexOf('hello, world') === reply.data.lastIndexOf('hello, world'));
});

test('204 and 304: no body is sent even when the app returns one; the next pipelined request is answered', T, async () => {
  const reqs = [
    '/status?code=204&mode=list',
    '/status?code=204&mode=gen',
    '/status?code=204&mode=empty',
    '/status?code=304&mode=list',
    '/status?code=304&mode=gen',
  ];
  const reply = await rawRequest(gh.port, reqs.map((p) => get(p)).join('') + get('/one', 'Connection: close\r\n'));
  assert.equal(reply.closedByServer, true);
  const rs = parseAll(reply.data, [...reqs.map(() => 'GET'), 'GET']);
  assert.deepEqual(
    rs.map((r) => r.status),
    [204, 204, 204, 304, 304, 200],
  );
  assert.equal(rs[5]!.body.toString(), 'hello, world');
  assert.ok(!reply.data.includes('SHOULD-NOT'), 'no app body on the wire');
});

test('204: the response carries no Content-Length announcing a body (RFC 9110 §8.6)', T, async () => {
  for (const mode of ['list', 'gen', 'empty']) {
    const reply = await rawRequest(gh.port, get(`/status?code=204&mode=${mode}`, 'Connection: close\r\n'));
    const r = parseResponse(reply.data);
    assert.ok(r, reply.data.toString('latin1'));
    assert.equal(r.status, 204);
    const cl = header(r, 'content-length');
    assert.ok(cl === undefined || cl === '0', `204 (${mode}) sent Content-Length: ${cl}`);
  }
});


// A status of the code alone breaks PEP 3333, yet gunicorn and uWSGI take it, and apps written
// against them give it: it is answered with the code's standard reason phrase.
const CODE_ONLY: Array<{ target: string; line: string; body: string }> = [
  { target: '/status?code=200&reason=none&mode=list', line: 'HTTP/1.1 200 OK', body: 'SHOULD-NOT-BE-SENT' },
  { target: '/status?code=200&reason=none&mode=body', line: 'HTTP/1.1 200 OK', body: 'streamed body' },
  { target: '/status?code=200&reason=none&mode=empty', line: 'HTTP/1.1 200 OK', body: '' },
  { target: '/status?code=404&reason=none&mode=list', line: 'HTTP/1.1 404 Not Found', body: 'SHOULD-NOT-BE-SENT' },
  { target: '/status?code=204&reason=none&mode=empty', line: 'HTTP/1.1 204 No Content', body: '' },
  { target: '/status?code=299&reason=none&mode=list', line: 'HTTP/1.1 299 ', body: 'SHOULD-NOT-BE-SENT' },
];

test('a status given as its code alone ("200"): answered with its standard reason phrase', T, async () => {
  for (const { target, line, body } of CODE_ONLY) {
    const reply = await rawRequest(gh.port, get(target, 'Connection: close\r\n'));
    const r = parseResponse(reply.data, { closed: reply.closedByServer });
    assert.ok(r, `${target}: ${reply.data.toString('latin1')}`);
    assert.equal(r.statusLine, line, target);
    assert.equal(r.body.toString(), body, target);
  }
  assert.doesNotMatch(gh.output(), /status must look like/);
});
// ---- broken response heads -------------------------------------------------------------------

const BAD_HEADS: Array<{ kind: string; what: string; explains: RegExp }> = [
  { kind: 'connection', what: 'a hop-by-hop Connection header', explains: /Connection/ },
  { kind: 'transfer-encoding', what: 'a hop-by-hop Transfer-Encoding header', explains: /Transfer-Encoding/ },
  { kind: 'keep-alive', what: 'a hop-by-hop Keep-Alive header', explains: /Keep-Alive/ },
  { kind: 'upgrade', what: 'a hop-by-hop Upgrade header', explains: /Upgrade/ },
  { kind: 'non-latin1-value', what: 'a header value that is not latin-1', explains: /X-Snow/ },
  { kind: 'int-value', what: 'an int header value', explains: /X-Number/ },
  { kind: 'bytes-name', what: 'a bytes header name', explains: /X-Bytes-Name/ },
  { kind: 'crlf-value', what: 'a CR LF in a header value (response splitting)', explains: /X-Split/ },
  { kind: 'space-in-name', what: 'a header name that is not an HTTP token', explains: /X Bad Name/ },
  { kind: 'int-status', what: 'an int status', explains: /299/ },
  { kind: 'text-status', what: 'a status without a code', explains: /TWO-HUNDRED/ },
  { kind: 'long-code-status', what: 'a status with a 4-digit code', explains: /2000 Way OK/ },
  { kind: 'out-of-range-status', what: 'a status code past 599', explains: /600 Beyond/ },
  { kind: 'tuple-headers', what: 'headers given as a tuple, not a list', explains: /list/ },
];

for (const { kind, what, explains } of BAD_HEADS) {
  test(`bad response head (${what}): 500, a log line says why, the server keeps serving`, T, async () => {
    const t = token();
    const target = `/bad?kind=${kind}&t=${t}`;
    const res = await fetch(`${gh.url}${target}`);
    assert.equal(res.status, 500);
    assert.equal(res.statusText, 'Internal Server Error');
    const body = await res.text();
    assert.ok(!body.includes('SHOULD-NOT-BE-SENT'), `the app's body is not sent: ${body}`);
    assert.equal(res.headers.get('set-cookie'), null);
    assert.equal(res.headers.get('x-split'), null);
    // One log line names the request and the problem.
    const lines = await eventually(`a log line about ${target}`, 3000, () => {
      const found = gh.output().split('\n').filter((l) => l.includes(target));
      return found.length > 0 ? found : undefined;
    });
    assert.ok(lines.some((l) => explains.test(l)), `a line about ${target} matches ${explains}:\n${lines.join('\n')}`);
    await expectServing();
  });
}

// ---- exceptions ------------------------------------------------------------------------------

test('an exception before start_response: 500, logged with its traceback, the server keeps serving', T, async () => {
  const res = await fetch(`${gh.url}/raise?where=before-start`);
  assert.equal(res.status, 500);
  await res.text();
  await gh.waitFor(/RuntimeError: raised before start_response/, 3000);
  await expectServing();
});

test('an exception after start_response but before the first body byte: 500', T, async () => {
  for (const where of ['after-start', 'first-chunk']) {
    const res = await fetch(`${gh.url}/raise?where=${where}`);
    assert.equal(res.status, 500, where);
    const body = await res.text();
    assert.ok(!body.includes('partial-body'), where);
  }
  await expectServing();
});

test('an exception after the headers went out: the connection is cut, no terminating chunk; new connections work', T, async () => {
  const reply = await rawRequest(gh.port, get('/raise?where=mid'));
  assert.equal(reply.closedByServer, true, 'the server cuts the connection');
  const text = reply.data.toString('latin1');
  const r = parseResponse(reply.data, { closed: true });
  assert.ok(r, `the headers went out: ${text}`);
  assert.equal(r.status, 200);
  assert.equal(r.complete, false, `no clean end: ${JSON.stringify(text)}`);
  assert.ok(!text.endsWith('0\r\n\r\n'), 'no terminating chunk');
  await expectServing();
});

// ---- Content-Length honesty --------------------------------------------------------------------

test('an app that declares Content-Length and sends fewer bytes: the response is cut, never complete', T, async () => {
  for (const mode of ['list', 'gen']) {
    const reply = await rawRequest(gh.port, get(`/content-length?declared=100&send=0123456789&mode=${mode}`));
    assert.equal(reply.closedByServer, true, `${mode}: the connection is cut`);
    const r = parseResponse(reply.data, { closed: true });
    assert.ok(r === null || (r.status === 200 && !r.complete), `${mode}: not a clean response: ${reply.data.toString('latin1')}`);
  }
  await expectServing();
});

test('an app that sends more than its declared Content-Length: no extra byte reaches the connection', T, async () => {
  for (const mode of ['list', 'gen']) {
    const reply = await rawRequest(gh.port, get(`/content-length?declared=5&send=helloEXTRA&mode=${mode}`) + get('/one', 'Connection: close\r\n'));
    const text = reply.data.toString('latin1');
    assert.ok(!text.includes('EXTRA'), `${mode}: bytes past Content-Length were sent: ${JSON.stringify(text)}`);
    const r = parseResponse(reply.data);
    if (r !== null && r.rest.length > 0) assert.match(r.rest.toString('latin1'), /^HTTP\/1\.1 /, `${mode}: the next response follows cleanly`);
  }
  await expectServing();
});
