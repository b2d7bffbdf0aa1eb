/**
 * Listeners that speak uwsgi, FastCGI and SCGI, behind a real nginx
 * (Debian's; the tests skip without it, or without Flask): nginx's stock
 * uwsgi_params, fastcgi_params and scgi_params reach the same routes and
 * apps as HTTP would, the environ carries what nginx sent (the client's
 * address, https, the real path), bodies go through whole; FastCGI's
 * management records, keep-alive and multiplexing refusal, garbage, and
 * --chmod-socket, with a raw FastCGI client.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { launch, type Server } from './helpers/launch.js';
import { RawConnection, type RawResponse } from './helpers/raw-connection.js';
import { request } from './helpers/request.js';
import { waitUntil } from './helpers/wait.js';
import { APPS, hasCommand, hasSystemModule, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { freePorts, startNginx, tempDir, type Peer } from './helpers/back-ends.js';
import {
  decodeEndRequest,
  decodePairs,
  encodeBeginRequest,
  encodePairs,
  encodeRecord,
  encodeStream,
  FCGI,
  FCGI_CANT_MPX_CONN,
  RecordReader,
  type FcgiRecord,
} from '../src/upstream/fastcgi-records.js';
import { encodeUwsgiPacket } from '../src/upstream/uwsgi-packet.js';

const skip = !hasCommand('nginx') ? 'needs Debian nginx' : !hasSystemModule('flask') ? 'needs python3-flask' : false;
let tmp: ReturnType<typeof tempDir>;
let gh: Server;
let nginx: Peer;
const url: Record<string, string> = {};
let fcgiSock: string;
let uwsgiTcpPort: number;

before(async () => {
  if (skip) return;
  tmp = tempDir('gateway');
  const sock = (name: string) => join(tmp.dir, `${name}.sock`);
  fcgiSock = sock('fastcgi');
  const config = join(tmp.dir, 'gatehouse.toml');
  [uwsgiTcpPort] = (await freePorts(1)) as [number];
  mkdirSync(join(tmp.dir, 'files'));
  writeFileSync(join(tmp.dir, 'files', 'page.html'), '<p>static through the protocol</p>'.repeat(100));
  writeFileSync(
    config,
    `bind = ["127.0.0.1:0"]\nuwsgi_socket = ["unix:${sock('uwsgi')}", "127.0.0.1:${uwsgiTcpPort}"]\nfastcgi_socket = ["unix:${fcgiSock}"]\nscgi_socket = ["unix:${sock('scgi')}"]\n` +
      `chmod_socket = "666"\nworkers = 1\npython = "${SYSTEM_PYTHON}"\nmax_request_body = "16m"\naccess_log = "${join(tmp.dir, 'access.log')}"\n` +
      `[apps.dump]\napp = ${JSON.stringify(join(APPS, 'upstream_wsgi.py'))}\n` +
      `[apps.flask]\napp = "flask_demo:app"\nchdir = ${JSON.stringify(join(APPS, 'flaskapp'))}\n` +
      `[[routes]]\npath = "/"\napp = "dump"\n[[routes]]\npath = "/flask"\napp = "flask"\n` +
      `[[routes]]\npath = "/files"\nstatic = { root = ${JSON.stringify(join(tmp.dir, 'files'))} }\n` +
      `[[routes]]\npath = "/gone"\nreturn = { status = 410, body = "gone here" }\n`,
  );
  gh = await launch(['--config', config], { workers: 2 });
  const ports = await freePorts(3);
  const [pu, pf, ps] = ports as [number, number, number];
  nginx = await startNginx(
    tmp.dir,
    `client_max_body_size 16m;\n` +
      `upstream fcgi { server unix:${fcgiSock}; keepalive 4; }\n` +
      `server { listen 127.0.0.1:${pu}; location / { include /etc/nginx/uwsgi_params; uwsgi_pass unix:${sock('uwsgi')}; } }\n` +
      `server { listen 127.0.0.1:${pf}; location / { include /etc/nginx/fastcgi_params; fastcgi_param HTTPS on; fastcgi_pass fcgi; fastcgi_keep_conn on; } }\n` +
      `server { listen 127.0.0.1:${ps}; location / { include /etc/nginx/scgi_params; scgi_pass unix:${sock('scgi')}; } }\n`,
    ports,
  );
  Object.assign(url, { uwsgi: `http://127.0.0.1:${pu}`, fastcgi: `http://127.0.0.1:${pf}`, scgi: `http://127.0.0.1:${ps}` });
});

after(async () => {
  if (skip) return;
  await nginx?.stop();
  await gh?.kill();
  tmp.remove();
});

for (const protocol of ['uwsgi', 'fastcgi', 'scgi'] as const) {
  test(`nginx ${protocol}_pass → gatehouse: a Flask app mounted at /flask answers`, { skip }, async () => {
    const res = await request(url[protocol]!, '/flask/api/search?q=tea');
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(JSON.parse(res.body), { q: 'tea', hits: [{ id: 1, name: 'teapot', tags: ['kitchen', '418'] }] });
    const missing = await request(url[protocol]!, '/flask/api/items/9');
    assert.equal(missing.status, 404);
    assert.deepEqual(JSON.parse(missing.body), { error: 'not found', path: '/api/items/9' });
    const form = await request(url[protocol]!, '/flask/form', { method: 'POST', body: 'name=x&colour=red&colour=blue', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    assert.deepEqual(JSON.parse(form.body), { name: 'x', colours: ['red', 'blue'], content_type: 'application/x-www-form-urlencoded' });
  });

  test(`nginx ${protocol}_pass → gatehouse: the environ has the real path, client and scheme; a 2 MiB body arrives whole`, { skip }, async () => {
    const body = randomBytes(2 * 1024 * 1024);
    const res = await request(url[protocol]!, '/a%20b/c?x=1', { method: 'POST', body, headers: { 'X-Custom': 'v', 'Content-Type': 'application/octet-stream' }, timeoutMs: 20000 });
    assert.equal(res.status, 200, res.body);
    const got = JSON.parse(res.body) as { environ: Record<string, string>; length: number; md5: string };
    assert.equal(got.length, body.length);
    assert.equal(got.md5, createHash('md5').update(body).digest('hex'));
    const env = got.environ;
    assert.equal(env.SCRIPT_NAME, '');
    assert.equal(env.PATH_INFO, '/a b/c');
    assert.equal(env.QUERY_STRING, 'x=1');
    assert.equal(env.REQUEST_METHOD, 'POST');
    assert.equal(env.SERVER_PROTOCOL, 'HTTP/1.1', "the front end's");
    assert.equal(env.REMOTE_ADDR, '127.0.0.1');
    assert.match(env.REMOTE_PORT!, /^\d+$/);
    assert.equal(env.SERVER_PORT, new URL(url[protocol]!).port);
    assert.equal(env.HTTP_X_CUSTOM, 'v');
    assert.equal(env.CONTENT_TYPE, 'application/octet-stream');
    assert.equal(env.CONTENT_LENGTH, String(body.length));
    assert.equal(env['wsgi.url_scheme'], protocol === 'fastcgi' ? 'https' : 'http', 'fastcgi_param HTTPS on');
  });

  test(`nginx ${protocol}_pass → gatehouse: static files and return routes (node:http's objects on the protocol) answer`, { skip }, async () => {
    const page = await request(url[protocol]!, '/files/page.html');
    assert.equal(page.status, 200);
    assert.equal(page.body, '<p>static through the protocol</p>'.repeat(100));
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
    const head = await request(url[protocol]!, '/files/page.html', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(page.body.length));
    const missing = await request(url[protocol]!, '/files/nope.html');
    assert.equal(missing.status, 404);
    const gone = await request(url[protocol]!, '/gone');
    assert.equal(gone.status, 410);
    assert.equal(gone.body, 'gone here');
    // The kept FastCGI connection goes on after them.
    assert.equal((await request(url[protocol]!, '/flask/api/items/1')).status, 200);
  });

  test(`nginx ${protocol}_pass → gatehouse: a 5 MiB response streams back`, { skip }, async () => {
    const res = await request(url[protocol]!, '/big', { timeoutMs: 20000 });
    assert.equal(res.status, 200);
    assert.equal(res.raw.length, 5 * 1024 * 1024);
    // No Content-Length: the stream's end delimits it, never chunked framing inside the protocol.
    const streamed = await request(url[protocol]!, '/stream');
    assert.equal(streamed.body, Array.from({ length: 1000 }, (_, i) => `part ${i}\n`).join(''));
    const status = await request(url[protocol]!, '/status');
    assert.equal(status.status, 404);
    assert.deepEqual(status.headers['set-cookie'], ['a=1', 'b=2']);
  });
}

test('--chmod-socket sets the protocol sockets\' mode', { skip }, () => {
  for (const name of ['uwsgi', 'fastcgi', 'scgi']) assert.equal(statSync(join(tmp.dir, `${name}.sock`)).mode & 0o777, 0o666, name);
});

/** A raw FastCGI connection: sends records (`then` once the first request ended), collects what comes back until `until` says enough. */
async function fcgiExchange(send: Buffer[], until: (records: FcgiRecord[]) => boolean, then: Buffer[] = []): Promise<{ records: FcgiRecord[]; closed: boolean }> {
  const socket = connect(fcgiSock);
  const reader = new RecordReader();
  const records: FcgiRecord[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer: ${records.map((r) => r.type).join(',')}`)), 10000);
    const done = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ records, closed });
    };
    socket.on('data', (d: Buffer) => {
      const got = reader.push(d);
      if (typeof got === 'string') return reject(new Error(got));
      records.push(...got);
      if (then.length > 0 && ends(records).length > 0) socket.write(Buffer.concat(then.splice(0)));
      if (until(records)) done(false);
    });
    socket.on('close', () => done(true));
    socket.on('error', () => {});
    for (const b of send) socket.write(b);
  });
}

function fcgiRequest(id: number, keep: boolean, path: string, body?: Buffer): Buffer[] {
  const params: [string, string][] = [['REQUEST_METHOD', body === undefined ? 'GET' : 'POST'], ['REQUEST_URI', path], ['SERVER_NAME', 'localhost']];
  if (body !== undefined) params.push(['CONTENT_LENGTH', String(body.length)]);
  return [
    encodeBeginRequest(id, keep),
    ...encodeStream(FCGI.PARAMS, id, encodePairs(params)),
    encodeRecord(FCGI.PARAMS, id),
    ...(body === undefined ? [] : encodeStream(FCGI.STDIN, id, body)),
    encodeRecord(FCGI.STDIN, id),
  ];
}

const ends = (records: FcgiRecord[]) => records.filter((r) => r.type === FCGI.END_REQUEST);

test('FastCGI: GET_VALUES says no multiplexing; a second request on a busy connection gets CANT_MPX_CONN; kept connections serve the next', { skip }, async () => {
  const values = await fcgiExchange([encodeRecord(FCGI.GET_VALUES, 0, encodePairs([['FCGI_MPXS_CONNS', ''], ['FCGI_MAX_REQS', '']]))], (r) => r.length > 0);
  assert.equal(values.records[0]!.type, FCGI.GET_VALUES_RESULT);
  assert.deepEqual(decodePairs(values.records[0]!.content), [['FCGI_MPXS_CONNS', '0'], ['FCGI_MAX_REQS', '1024']]);

  // Request 1 and, before it is answered, request 2 on the same connection; then request 3 after 1 ended.
  const mpx = await fcgiExchange([...fcgiRequest(1, true, '/one'), ...fcgiRequest(2, true, '/two')], (r) => ends(r).length >= 2);
  const [first, second] = ends(mpx.records);
  assert.equal(second!.requestId, 1);
  assert.equal(first!.requestId, 2);
  assert.equal(decodeEndRequest(first!.content)!.protocolStatus, FCGI_CANT_MPX_CONN);
  const stdout = Buffer.concat(mpx.records.filter((r) => r.type === FCGI.STDOUT && r.requestId === 1).map((r) => r.content)).toString();
  assert.match(stdout, /^Status: 200 OK\r\n/);
  assert.match(stdout, /"PATH_INFO": "\/one"/);

  const kept = await fcgiExchange(fcgiRequest(1, true, '/a'), (r) => ends(r).length >= 1);
  assert.equal(kept.closed, false, 'FCGI_KEEP_CONN: the connection stays open');
  const closes = await fcgiExchange(fcgiRequest(1, false, '/a'), () => false);
  assert.equal(closes.closed, true, 'without FCGI_KEEP_CONN the connection closes after END_REQUEST');
  assert.equal(ends(closes.records).length, 1);
});

test('FastCGI: a kept connection serves the next request after a body that came in many records at once', { skip }, async () => {
  const body = randomBytes(1024 * 1024);
  // All in one write: the connection is paused while the body waits to be read, mid-chunk.
  const got = await fcgiExchange([Buffer.concat(fcgiRequest(1, true, '/upload', body))], (r) => ends(r).length >= 2, fcgiRequest(2, true, '/after'));
  const out = (id: number) => Buffer.concat(got.records.filter((r) => r.type === FCGI.STDOUT && r.requestId === id).map((r) => r.content)).toString();
  assert.match(out(1), new RegExp(`"md5": "${createHash('md5').update(body).digest('hex')}"`));
  assert.match(out(2), /"PATH_INFO": "\/after"/);
});

test('uwsgi over TCP: a POST whose body comes in pieces is answered whole, then the connection closes', { skip }, async () => {
  const body = randomBytes(300 * 1024);
  const socket = connect(uwsgiTcpPort, '127.0.0.1');
  const got: Buffer[] = [];
  const closed = new Promise<void>((resolve, reject) => {
    socket.on('data', (d: Buffer) => got.push(d));
    socket.on('end', resolve);
    socket.on('error', reject);
  });
  socket.write(encodeUwsgiPacket([['REQUEST_METHOD', 'POST'], ['REQUEST_URI', '/tcp'], ['CONTENT_LENGTH', String(body.length)], ['SERVER_PROTOCOL', 'HTTP/1.1']])!);
  for (let at = 0; at < body.length; at += 64 * 1024) {
    socket.write(body.subarray(at, at + 64 * 1024));
    await new Promise((r) => setTimeout(r, 20));
  }
  await closed;
  const answer = Buffer.concat(got).toString('latin1');
  assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
  const json = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { length: number; md5: string };
  assert.equal(json.length, body.length);
  assert.equal(json.md5, createHash('md5').update(body).digest('hex'));
});

/** One request as a raw uwsgi packet on the TCP listener; the dump app's environ from the answer. */
async function uwsgiEnviron(pairs: [string, string][]): Promise<Record<string, string>> {
  const socket = connect(uwsgiTcpPort, '127.0.0.1');
  const got: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (d: Buffer) => got.push(d));
    socket.on('end', resolve);
    socket.on('error', reject);
    socket.write(encodeUwsgiPacket(pairs)!);
  });
  const answer = Buffer.concat(got).toString('latin1');
  assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/, answer);
  return (JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { environ: Record<string, string> }).environ;
}

test('uwsgi vars become the request as sent, every time: repeated headers joined, hop-by-hop and malformed names dropped, latin-1 kept', { skip }, async () => {
  const pairs: [string, string][] = [
    ['REQUEST_METHOD', 'GET'],
    ['REQUEST_URI', '/vars?q=tea'],
    ['QUERY_STRING', 'q=tea'],
    ['SERVER_PROTOCOL', 'HTTP/1.1'],
    ['DOCUMENT_ROOT', '/not/used'],
    ['', ''],
    ['HTTP_X_MULTI', 'one'],
    ['HTTP_X_MULTI', 'caf\u00e9'],
    ['HTTP_COOKIE', 'a=1'],
    ['HTTP_COOKIE', 'b=2'],
    ['HTTP_CONNECTION', 'keep-alive'],
    ['HTTP_TRANSFER_ENCODING', 'chunked'],
    ['HTTP_KEEP_ALIVE', 'timeout=5'],
    ['HTTP_UPGRADE', 'websocket'],
    ['HTTP_EXPECT', '100-continue'],
    ['HTTP_x_lower', 'dropped'],
    ['HTTP_', 'dropped'],
    ['HTTP_CONTENT_TYPE', 'text/x-from-header'],
    ['HTTP_X_LONG_HEADER_NAME_FOR_A_SLICED_STRING', 'v'.repeat(300)],
  ];
  // The second request finds the header names already made.
  for (const round of [1, 2]) {
    const env = await uwsgiEnviron(pairs);
    assert.equal(env.PATH_INFO, '/vars', `round ${round}`);
    assert.equal(env.QUERY_STRING, 'q=tea');
    assert.equal(env.HTTP_X_MULTI, 'one, caf\u00e9');
    assert.equal(env.HTTP_COOKIE, 'a=1; b=2');
    assert.equal(env.CONTENT_TYPE, 'text/x-from-header');
    assert.equal(env.HTTP_X_LONG_HEADER_NAME_FOR_A_SLICED_STRING, 'v'.repeat(300));
    for (const name of ['HTTP_CONNECTION', 'HTTP_TRANSFER_ENCODING', 'HTTP_KEEP_ALIVE', 'HTTP_UPGRADE', 'HTTP_EXPECT', 'HTTP_X_LOWER', 'HTTP_x_lower', 'DOCUMENT_ROOT']) assert.equal(env[name], undefined, `${name}, round ${round}`);
  }
});

/** The answer to `GET target` sent raw (its bytes as they are) to the HTTP server at `base`. */
async function rawGet(base: string, target: Buffer): Promise<RawResponse> {
  const c = await RawConnection.open(Number(new URL(base).port));
  try {
    c.write(Buffer.concat([Buffer.from('GET '), target, Buffer.from(' HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')]));
    return await c.readResponse();
  } finally {
    c.close();
  }
}

function dumpedEnviron(res: RawResponse): Record<string, string> {
  assert.equal(res.status, 200, res.body.toString('latin1'));
  return (JSON.parse(res.body.toString('latin1')) as { environ: Record<string, string> }).environ;
}

test('raw UTF-8 bytes in the request target, through nginx and each protocol: PEP 3333 (PATH_INFO decoded as latin-1, QUERY_STRING and RAW_URI raw), as over HTTP', { skip }, async () => {
  // café raw in the path and the query, a space and é percent-encoded.
  const raw = Buffer.from('/caf\u00e9/x%20y?q=caf\u00e9&r=%C3%A9', 'utf8');
  const asLatin1 = raw.toString('latin1');
  // The same path percent-encoded is its twin in PATH_INFO.
  const encoded = dumpedEnviron(await rawGet(gh.url, Buffer.from('/caf%C3%A9/x%20y?q=caf%C3%A9&r=%C3%A9')));
  assert.equal(encoded.PATH_INFO, '/caf\u00c3\u00a9/x y');
  const direct = dumpedEnviron(await rawGet(gh.url, raw));
  assert.equal(direct.PATH_INFO, encoded.PATH_INFO);
  for (const protocol of ['http', 'uwsgi', 'fastcgi', 'scgi'] as const) {
    const env = protocol === 'http' ? direct : dumpedEnviron(await rawGet(url[protocol]!, raw));
    assert.equal(env.PATH_INFO, direct.PATH_INFO, protocol);
    assert.equal(env.SCRIPT_NAME, '');
    assert.equal(env.QUERY_STRING, asLatin1.slice(asLatin1.indexOf('?') + 1), protocol);
    assert.equal(env.RAW_URI, asLatin1, protocol);
    assert.equal(env.REQUEST_URI, asLatin1, protocol);
  }
});

test('a front end that closes its connection mid-request: the request is logged as 499 (uwsgi, FastCGI)', { skip }, async () => {
  const log = join(tmp.dir, 'access.log');
  const uwsgi = connect(join(tmp.dir, 'uwsgi.sock'));
  uwsgi.on('error', () => {});
  uwsgi.write(encodeUwsgiPacket([['REQUEST_METHOD', 'GET'], ['REQUEST_URI', '/sleep?uwsgi'], ['SERVER_PROTOCOL', 'HTTP/1.1']])!);
  const fastcgi = connect(fcgiSock);
  fastcgi.on('error', () => {});
  fastcgi.write(Buffer.concat(fcgiRequest(1, true, '/sleep?fastcgi')));
  await new Promise((r) => setTimeout(r, 300));
  uwsgi.destroy();
  fastcgi.destroy();
  for (const which of ['uwsgi', 'fastcgi']) {
    assert.ok(await waitUntil(() => new RegExp(`"GET /sleep\\?${which} HTTP/1.1" 499 `).test(readFileSync(log, 'utf8')), 3000), `${which}: ${readFileSync(log, 'utf8')}`);
  }
});

test('a protocol listener that receives garbage closes that connection and logs one line; the next request is served', { skip }, async () => {
  const got = await fcgiExchange([Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')], () => false);
  assert.equal(got.closed, true);
  await gh.waitFor(/\[WARNING\] fastcgi connection from a unix socket: unsupported FastCGI version 71; closed/, 3000);
  const res = await request(url.uwsgi!, '/flask/api/items/1');
  assert.equal(res.status, 200);
});
