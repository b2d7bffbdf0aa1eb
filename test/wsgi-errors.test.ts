/**
 * PEP 3333 conformance, end to end (test/helpers/wsgi-cases.ts): what goes
 * wrong and what the client and the log see of it: wsgi.errors, the
 * iterable's close() called exactly once (after an answer, an exception, a
 * client that leaves), response heads PEP 3333 forbids, exceptions before
 * and after the headers, and a Content-Length the body does not keep to.
 *
 * The client-disconnect tests get a 1-worker server each, so a worker left
 * stuck by a failure cannot starve the other tests, and "the next request is
 * served" really means the same worker.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch, type Server } from './helpers/launch.js';
import { sleep } from './helpers/wait.js';
import { APP, eventually, expectServing, get, getEnviron, gh, parseResponse, rawRequest, scratch, serveWsgiCases, T } from './helpers/wsgi-cases.js';

serveWsgiCases();

function token(): string {
  return randomBytes(6).toString('hex');
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

// ---- wsgi.errors -----------------------------------------------------------------------

test('wsgi.errors: text written there shows up in the server output on a line carrying the worker pid', T, async () => {
  const t = token();
  const { pid } = (await getEnviron(`/errors?token=${t}`)) as { pid: number };
  assert.ok(Number.isInteger(pid) && pid > 0);
  await gh.waitFor(new RegExp(`^\\[[^\\]]+\\] \\[${pid}\\] \\[[A-Z]+\\] wsgi\\.errors write ${t}$`, 'm'), 3000);
  await gh.waitFor(new RegExp(`^\\[[^\\]]+\\] \\[${pid}\\] \\[[A-Z]+\\] wsgi\\.errors writelines ${t}$`, 'm'), 3000);
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
// ---- broken response heads -------------------------------------------------------------------

const BAD_HEADS: Array<{ kind: string; what: string; explains: RegExp }> = [
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
  { kind: 'two-content-lengths', what: 'two Content-Length headers', explains: /Content-Length given twice \(18 and 19\)/ },
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
