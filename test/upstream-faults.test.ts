/**
 * Broken back ends: small FastCGI, SCGI and HTTP (proxy) peers on loopback
 * that answer garbage, refuse, die halfway or send more than their
 * Content-Length (or after their last chunk), one that never reads, one
 * that never accepts. A malformed answer is a 502 with a log line; one that
 * breaks after its head went out cuts the client's connection, so the client
 * never takes a half response for a whole one; a body past its end is cut
 * there, with a warning, and that connection is not reused (nginx); send and
 * connect timeouts are 504s.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { connect, createServer, type Server as NetServer, type Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch, type Server } from './helpers/launch.js';
import { request } from './helpers/request.js';
import { tempDir, waitForSocket } from './helpers/back-ends.js';
import { spawn } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { encodeEndRequest, encodeRecord, FCGI, FCGI_OVERLOADED } from '../src/upstream/fastcgi-records.js';

const WHOLE_TAIL = 'and the rest, long enough to be compressed. '.repeat(40);

/** What each fake back end writes once it has read the request's end (the empty STDIN record). */
const ANSWERS: Record<string, (s: Socket) => void> = {
  garbage: (s) => s.end('HTTP/1.0 200 OK\r\n\r\nnot FastCGI'),
  overloaded: (s) => s.end(encodeEndRequest(1, 0, FCGI_OVERLOADED)),
  badhead: (s) => s.end(Buffer.concat([encodeRecord(FCGI.STDOUT, 1, Buffer.from('no colon here\r\n\r\n')), encodeEndRequest(1, 0, 0)])),
  halfway: (s) => s.end(encodeRecord(FCGI.STDOUT, 1, Buffer.from('Content-Type: text/plain\r\n\r\nthe first part of'))),
  short: (s) => s.end(Buffer.concat([encodeRecord(FCGI.STDOUT, 1, Buffer.from('Content-Length: 100\r\n\r\nten bytes.')), encodeRecord(FCGI.STDOUT, 1), encodeEndRequest(1, 0, 0)])),
  noend: (s) => s.end(Buffer.concat([encodeRecord(FCGI.STDOUT, 1, Buffer.from('Status: 200\r\n\r\nbody'))])),
  // The last body bytes in the same read as END_REQUEST (they go to the client with the response's end).
  whole: (s) => s.write(Buffer.concat([encodeRecord(FCGI.STDOUT, 1, Buffer.from('Content-Type: text/plain\r\n\r\nfirst,')), encodeRecord(FCGI.STDOUT, 1, Buffer.from(WHOLE_TAIL)), encodeEndRequest(1, 0, 0)])),
  long: (s) => s.write(Buffer.concat([encodeRecord(FCGI.STDOUT, 1, Buffer.from('Content-Length: 3\r\n\r\n')), encodeRecord(FCGI.STDOUT, 1, Buffer.from('three is too long')), encodeEndRequest(1, 0, 0)])),
  // Past its Content-Length in a later read, the head and part of the body gone to the client already.
  later: (s) => {
    s.write(encodeRecord(FCGI.STDOUT, 1, Buffer.from('Content-Length: 12\r\n\r\nfirst,')));
    setTimeout(() => s.write(Buffer.concat([encodeRecord(FCGI.STDOUT, 1, Buffer.from('second and more')), encodeEndRequest(1, 0, 0)])), 100);
  },
};
/** HTTP upstreams for the proxy action that go on past their answer's end, keeping the connection open. */
const HTTP_ANSWERS: Record<string, (s: Socket) => void> = {
  'proxy-long': (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello, and more'),
  'proxy-chunked': (s) => s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nand more'),
  // The rest a moment later, while the connection waits in the pool.
  'proxy-later': (s) => {
    s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
    setTimeout(() => s.write(', and more'), 100);
  },
  // Answers that end their connection: undici destroys it at the answer's end, the rest of the read with it.
  'proxy-close': (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello, and more'),
  'proxy-close-chunked': (s) => s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\nand more'),
};
/** Connections each fake back end accepted. */
const accepted: Record<string, number> = {};

let tmp: ReturnType<typeof tempDir>;
/** A back end that takes the connection and never reads: the request cannot all be sent. */
let deaf: NetServer;
/** A TCP listener that never accepts, its backlog filled: connecting hangs. */
let full: { port: number; stop(): void } | null = null;
let gh: Server;
const servers: NetServer[] = [];

before(async () => {
  tmp = tempDir('faults');
  let routes = '';
  for (const [name, answer] of Object.entries(ANSWERS)) {
    accepted[name] = 0;
    const server = createServer((s) => {
      accepted[name]!++;
      s.on('error', () => {});
      let seen = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        seen = Buffer.concat([seen, d]);
        if (seen.includes(encodeRecord(FCGI.STDIN, 1))) answer(s);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    routes += `[[routes]]\npath = "/${name}"\nfastcgi = { pass = "127.0.0.1:${(server.address() as { port: number }).port}" }\n`;
  }
  for (const [name, answer] of Object.entries(HTTP_ANSWERS)) {
    accepted[name] = 0;
    const server = createServer((s) => {
      accepted[name]!++;
      s.on('error', () => {});
      s.on('data', () => answer(s));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    routes += `[[routes]]\npath = "/${name}"\nproxy = { upstreams = ["127.0.0.1:${(server.address() as { port: number }).port}"] }\n`;
  }
  deaf = createServer((s) => {
    s.on('error', () => {});
    s.pause();
  });
  await new Promise<void>((resolve) => deaf.listen(0, '127.0.0.1', resolve));
  routes += `[[routes]]\npath = "/deaf"\nfastcgi = { pass = "127.0.0.1:${(deaf.address() as { port: number }).port}", send_timeout = 1 }\n`;
  // SCGI: the answer overruns its Content-Length and the back end keeps the connection open.
  const scgi = createServer((s) => {
    s.on('error', () => {});
    s.once('data', () => s.write('Status: 200 OK\r\nContent-Length: 5\r\n\r\nhello, and more'));
  });
  await new Promise<void>((resolve) => scgi.listen(0, '127.0.0.1', resolve));
  servers.push(scgi);
  routes += `[[routes]]\npath = "/scgi-long"\nscgi = { pass = "127.0.0.1:${(scgi.address() as { port: number }).port}", read_timeout = 30 }\n`;
  full = await backlogFull();
  if (full !== null) routes += `[[routes]]\npath = "/full"\nuwsgi = { pass = "127.0.0.1:${full.port}", connect_timeout = 1 }\n`;
  const config = join(tmp.dir, 'site.toml');
  writeFileSync(config, `max_request_body = "64m"\n` + routes);
  gh = await launch(['--config', config, '--bind', '127.0.0.1:0'], { workers: 0 });
});

after(async () => {
  await gh?.kill();
  for (const s of servers) s.close();
  deaf?.close();
  full?.stop();
  tmp.remove();
});

/** A GET that tells a complete response from one whose connection was cut. */
function fetchOutcome(url: string): Promise<{ status: number; body: string; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, complete: res.complete }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body, complete: false }));
    });
    req.on('error', reject);
  });
}

test('a malformed FastCGI answer is a 502 with a log line naming the upstream', async () => {
  for (const [name, why] of [
    ['garbage', /unsupported FastCGI version 72/],
    ['overloaded', /the application refused the request: FCGI_OVERLOADED/],
    ['badhead', /the back end sent an invalid header line/],
  ] as const) {
    const res = await request(gh.url, `/${name}/x`);
    assert.equal(res.status, 502, name);
    assert.equal(res.body, 'Bad Gateway\n');
    await gh.waitFor(new RegExp(`GET /${name}/x: upstream 127\\.0\\.0\\.1:\\d+ failed while reading the response: ${why.source}.*\\(502\\)`), 3000);
  }
});

test('a FastCGI answer that breaks after its head: the client connection is cut, never a clean end', async () => {
  for (const name of ['halfway', 'short', 'noend']) {
    const got = await fetchOutcome(`${gh.url}/${name}/x`);
    assert.equal(got.status, 200, name);
    assert.equal(got.complete, false, `${name}: looked complete with ${JSON.stringify(got.body)}`);
  }
  await gh.waitFor(/GET \/short\/x: upstream \S+ failed while reading the response: the body ended 90 bytes short of its Content-Length; response cut/, 3000);
  await gh.waitFor(/GET \/halfway\/x: upstream \S+ failed while reading the response: the connection closed before the response ended; response cut/, 3000);
  // The front is unharmed.
  assert.equal((await request(gh.url, '/garbage/y')).status, 502);
});

test('a FastCGI answer whose last body bytes come with END_REQUEST: sent whole, compressed when asked', async () => {
  for (let i = 0; i < 2; i++) {
    // Twice: the second request takes the connection the first one left in the pool.
    const plain = await request(gh.url, '/whole/x');
    assert.equal(plain.status, 200);
    assert.equal(plain.body, `first,${WHOLE_TAIL}`);
  }
  const zipped = await request(gh.url, '/whole/x', { headers: { 'accept-encoding': 'gzip' } });
  assert.equal(zipped.headers['content-encoding'], 'gzip');
  assert.equal(gunzipSync(zipped.raw).toString(), `first,${WHOLE_TAIL}`);
});

test('an answer past its Content-Length: the client gets the declared length, a warning names the upstream, the connection is not reused', async () => {
  for (const [name, body] of [['long', 'thr'], ['later', 'first,second']] as const) {
    for (let i = 1; i <= 2; i++) {
      const got = await fetchOutcome(`${gh.url}/${name}/x`);
      assert.deepEqual(got, { status: 200, body, complete: true }, name);
      // Each request on a connection of its own: the one that overran is closed, not pooled.
      assert.equal(accepted[name], i, name);
    }
    await gh.waitFor(new RegExp(`\\[WARNING\\] GET /${name}/x: upstream 127\\.0\\.0\\.1:\\d+ sent more data than specified in its Content-Length; the rest was dropped`), 3000);
  }
  // SCGI (uwsgi reads the same way): the answer ends at its declared length, without waiting for the back end to close.
  const got = await fetchOutcome(`${gh.url}/scgi-long/x`);
  assert.deepEqual(got, { status: 200, body: 'hello', complete: true });
  await gh.waitFor(/\[WARNING\] GET \/scgi-long\/x: upstream 127\.0\.0\.1:\d+ sent more data than specified in its Content-Length/, 3000);
});

test('proxy: an answer that goes on past its end is cut there, with a warning naming the request and the upstream, and its connection is not reused', async () => {
  const longer = 'more data than specified in its Content-Length';
  const trailing = 'data after its last chunk';
  for (const [name, sent] of [['proxy-long', longer], ['proxy-chunked', trailing], ['proxy-later', longer], ['proxy-close', longer], ['proxy-close-chunked', trailing]] as const) {
    for (let i = 1; i <= 2; i++) {
      const got = await fetchOutcome(`${gh.url}/${name}/${i}`);
      assert.deepEqual(got, { status: 200, body: 'hello', complete: true }, name);
      assert.equal(accepted[name], i, name);
      await gh.waitFor(new RegExp(`\\[WARNING\\] GET /${name}/${i}: upstream 127\\.0\\.0\\.1:\\d+ sent ${sent}; the rest was dropped`), 3000);
    }
  }
});

/** Python's listen(0) with no accept(): once a few connections wait in the queue, Linux drops the next SYNs. */
async function backlogFull(): Promise<{ port: number; stop(): void } | null> {
  const py = spawn(SYSTEM_PYTHON, ['-c', 'import socket,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(120)']);
  const port = await new Promise<number>((resolve) => py.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  await waitForSocket(port).catch(() => {});
  const fillers: Socket[] = [];
  for (let i = 0; i < 4; i++) fillers.push(connect(port, '127.0.0.1').on('error', () => {}));
  await new Promise((r) => setTimeout(r, 200));
  return { port, stop: () => (fillers.forEach((f) => f.destroy()), py.kill()) };
}

test('a back end that stops reading the request: 504 after send_timeout, naming the phase', async () => {
  const res = await request(gh.url, '/deaf/x', { method: 'POST', body: Buffer.alloc(16 * 1024 * 1024, 1), timeoutMs: 10000 });
  assert.equal(res.status, 504);
  await gh.waitFor(/POST \/deaf\/x: upstream 127\.0\.0\.1:\d+ failed while sending the request: timed out after 1 s \(504\)/, 3000);
});

test('a back end that does not accept the connection: 504 after connect_timeout, naming the phase', async () => {
  const started = Date.now();
  const res = await request(gh.url, '/full/x');
  assert.equal(res.status, 504);
  assert.ok(Date.now() - started < 3000);
  await gh.waitFor(/GET \/full\/x: upstream 127\.0\.0\.1:\d+ failed while connecting: timed out after 1 s \(504\)/, 3000);
});
