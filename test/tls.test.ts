/**
 * TLS and HTTP/2 on the front: --certfile/--keyfile on every --bind,
 * certificates picked by SNI (subjectAltName, CN, explicit and wildcard
 * hosts, the default), tls_min_version, HTTP/2 by ALPN with HTTP/1.1 on the
 * same port (and http2 = false), the environ of a TLS request, every kind of
 * response over HTTP/2 (app, streamed, file, spooled, static, redirect,
 * return, refusals), many streams on one connection (h2load), a reset stream
 * cancelling only its own request, draining with GOAWAY, redirect_https,
 * bad certificates as config errors, and certificates reloaded on SIGHUP
 * (all or nothing, a bad file logged).
 *
 * The certificates are self-signed, made with openssl in a temp dir; tests
 * skip when openssl (or curl, h2load) is missing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect as h2connect, constants as h2, createSecureServer, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { tmpdir } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { H2Request, H2Response as CompatResponse } from '../src/front/h2-compat.js';
import { APPS, hasCommand } from './helpers/gatehouse.js';
import { launch, runCli, type Server } from './helpers/launch.js';
import { RawConnection } from './helpers/raw-connection.js';
import { request } from './helpers/request.js';
import { sleep, waitUntil } from './helpers/wait.js';

const HAS_OPENSSL = hasCommand('openssl');
const NO_OPENSSL = HAS_OPENSSL ? false : 'openssl is not installed (Debian: openssl)';
const NO_CURL = !HAS_OPENSSL ? NO_OPENSSL : hasCommand('curl') ? false : 'curl is not installed';
const NO_H2LOAD = !HAS_OPENSSL ? NO_OPENSSL : hasCommand('h2load') ? false : 'h2load is not installed (Debian: nghttp2-client)';

const ECHO = `${APPS}/http_apps.py:app`;
const ENVIRON = `${APPS}/basic.py:echo_environ`;
const CASES = `${APPS}/wsgi_cases.py:dispatch`;
const CSS = 'body { color: green; }\n';

let tmp = '';
let accessLog = '';
/** The config-file server: [0] TLS with SNI, [1] TLS 1.3 only without HTTP/2, [2] plain redirect_https = 8443. */
let site: Server | null = null;
/** `--certfile/--keyfile` on two --bind addresses, the environ app. */
let simple: Server | null = null;

function cert(name: string): string {
  return join(tmp, `${name}.crt`);
}
function key(name: string): string {
  return join(tmp, `${name}.key`);
}

/** A self-signed certificate `name.crt` / `name.key`; `san` null leaves only the CN. */
function makeCertificate(name: string, cn: string, san: string | null): void {
  const args = ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key(name), '-out', cert(name), '-days', '2', '-subj', `/CN=${cn}`];
  if (san !== null) args.push('-addext', `subjectAltName=${san}`);
  const made = spawnSync('openssl', args, { encoding: 'utf8' });
  assert.equal(made.status, 0, `openssl ${args.join(' ')}: ${made.stderr}`);
}

before(async () => {
  if (!HAS_OPENSSL) return;
  tmp = mkdtempSync(join(tmpdir(), 'gh-tls-'));
  accessLog = join(tmp, 'access.log');
  makeCertificate('a', 'a.test', 'DNS:a.test,DNS:*.a.test');
  makeCertificate('b', 'b.test', 'DNS:b.test');
  makeCertificate('c', 'c.test', null);
  makeCertificate('d', 'd.test', 'DNS:d.test');
  // b.test renewed: the same names, another certificate.
  makeCertificate('b2', 'b.test', 'DNS:b.test');
  mkdirSync(join(tmp, 'public'));
  writeFileSync(join(tmp, 'public', 'style.css'), CSS);
  writeFileSync(join(tmp, 'public', 'blob.bin'), randomBytes(300_000));
  mkdirSync(join(tmp, 'public', 'no-index'));
  writeFileSync(
    join(tmp, 'site.toml'),
    `access_log = "${accessLog}"
max_request_body = "1m"

[[listeners]]
bind = "127.0.0.1:0"
certificates = [
  { certfile = "a.crt", keyfile = "a.key" },
  { certfile = "b.crt", keyfile = "b.key" },
  { certfile = "c.crt", keyfile = "c.key" },
  { certfile = "d.crt", keyfile = "d.key", hosts = ["*.wild.test"] },
]

[[listeners]]
bind = "127.0.0.1:0"
certfile = "b.crt"
keyfile = "b.key"
tls_min_version = "1.3"
http2 = false

[[listeners]]
bind = "127.0.0.1:0"
redirect_https = 8443

[apps.echo]
app = "${ECHO}"
workers = 2

[apps.cases]
app = "${CASES}"
workers = 1

[[routes]]
host = "a.test"
path = "/site"
return = { status = 200, body = "site a" }

[[routes]]
host = "b.test"
path = "/site"
return = { status = 200, body = "site b" }

[[routes]]
path = "/static"
static = { root = "public" }

[[routes]]
path = "/go"
redirect = { status = 302, location = "$scheme://$host/elsewhere$path" }

[[routes]]
path = "/cases"
app = "cases"

[[routes]]
path = "/"
app = "echo"
`,
  );
  [site, simple] = await Promise.all([
    launch(['--config', join(tmp, 'site.toml')], { workers: 3 }),
    launch(['--bind', '127.0.0.1:0', '--bind', '127.0.0.1:0', '--certfile', cert('a'), '--keyfile', key('a'), ENVIRON]),
  ]);
});

after(async () => {
  await Promise.all([site?.kill(), simple?.kill()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function portOf(server: Server, index: number): number {
  return Number(/:(\d+)$/.exec(server.addresses[index]!)![1]);
}

// ---------------------------------------------------------------- clients

/**
 * An HTTP/2 session to 127.0.0.1:port (self-signed certificates accepted);
 * `servername` is sent by SNI and is the requests' :authority (Node's client does that).
 */
function h2session(port: number, servername?: string): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = h2connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, ...(servername === undefined ? {} : { servername }) });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

interface H2Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request on `session`; rejects when the stream fails or takes more than 15 s. */
function h2request(session: ClientHttp2Session, path: string, opts: { method?: string; headers?: OutgoingHttpHeaders; body?: Buffer | string } = {}): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, ':method': opts.method ?? 'GET', ...opts.headers }, { endStream: opts.body === undefined });
    const timer = setTimeout(() => stream.close(h2.NGHTTP2_CANCEL), 15_000);
    let status = 0;
    let headers: H2Response['headers'] = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      status = Number(h[':status']);
      headers = h;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    stream.on('end', () => {
      clearTimeout(timer);
      resolve({ status, headers, body: Buffer.concat(chunks) });
    });
    if (opts.body !== undefined) stream.end(opts.body);
  });
}

/** `promise`, or a rejection naming `what` after `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function h2close(session: ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => session.close(() => resolve()));
}

function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

/** The certificate (CN, SHA-256 fingerprint) and the TLS version a handshake with `servername` ends with. */
function handshake(port: number, opts: ConnectionOptions = {}): Promise<{ cn: string; fingerprint: string; protocol: string | null; alpn: string | false }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts }, () => {
      const peer = socket.getPeerCertificate();
      const cn = peer.subject.CN;
      resolve({ cn: Array.isArray(cn) ? cn.join(',') : (cn ?? ''), fingerprint: peer.fingerprint256, protocol: socket.getProtocol(), alpn: socket.alpnProtocol ?? false });
      socket.end();
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error('handshake timed out')));
    socket.on('error', reject);
  });
}

function accessLines(): string[] {
  try {
    return readFileSync(accessLog, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------- tests

test('--certfile/--keyfile: TLS on every --bind, logged as https://; HTTP/2 and HTTP/1.1 on the same port (curl)', { skip: NO_CURL }, async () => {
  const gh = simple!;
  assert.equal(gh.addresses.length, 2);
  assert.equal((gh.output().match(/Listening at: https:\/\/127\.0\.0\.1:\d+ \(/g) ?? []).length, 2, gh.output());
  for (const address of gh.addresses) {
    for (const [flag, version] of [['--http2', '2'], ['--http1.1', '1.1']] as const) {
      const r = await run('curl', ['-sk', flag, '--max-time', '10', '-w', '\n%{http_version}', `https://${address}/where?x=1`]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.split('\n');
      assert.equal(lines.at(-1), version, `${flag} to ${address}`);
      const env = JSON.parse(lines.slice(0, -1).join('\n')) as Record<string, string>;
      assert.equal(env.PATH_INFO, '/where');
      assert.equal(env.SERVER_PROTOCOL, version === '2' ? 'HTTP/2.0' : 'HTTP/1.1');
    }
  }
  // The plain-text port is not served in the clear.
  await assert.rejects(request(gh.url.replace('https:', 'http:'), '/', { timeoutMs: 5000 }));
});

test('environ over HTTP/2: url_scheme https, HTTPS on, HTTP_HOST from :authority, no pseudo-headers, the POST body', { skip: NO_OPENSSL }, async () => {
  const session = await h2session(portOf(simple!, 0));
  try {
    const port = portOf(simple!, 0);
    const r = await h2request(session, '/form?q=1', {
      method: 'POST',
      headers: { ':authority': `app.example:${port}`, 'content-type': 'application/x-www-form-urlencoded', 'x-custom': 'yes' },
      body: 'a=1&b=2',
    });
    assert.equal(r.status, 200);
    const env = JSON.parse(r.body.toString()) as Record<string, string | boolean>;
    assert.equal(env['wsgi.url_scheme'], 'https');
    assert.equal(env.HTTPS, 'on');
    assert.equal(env.SERVER_PROTOCOL, 'HTTP/2.0');
    assert.equal(env.REQUEST_METHOD, 'POST');
    assert.equal(env.PATH_INFO, '/form');
    assert.equal(env.QUERY_STRING, 'q=1');
    assert.equal(env.HTTP_HOST, `app.example:${port}`);
    assert.equal(env.HTTP_X_CUSTOM, 'yes');
    assert.equal(env.CONTENT_TYPE, 'application/x-www-form-urlencoded');
    assert.equal(env.CONTENT_LENGTH, '7');
    assert.equal(env.body, 'a=1&b=2');
    assert.deepEqual(Object.keys(env).filter((k) => k.includes(':')), [], 'pseudo-headers do not become environ keys');
    // The connection's addresses, read from the TLS socket; a bodiless GET on the same session after the POST.
    const get = JSON.parse((await h2request(session, '/again')).body.toString()) as Record<string, string>;
    for (const e of [env, get]) {
      assert.equal(e.REMOTE_ADDR, '127.0.0.1');
      assert.equal(e.REMOTE_PORT, String(session.socket.localPort));
      assert.equal(e.SERVER_NAME, '127.0.0.1');
      assert.equal(e.SERVER_PORT, String(port));
    }
    assert.equal(get.REQUEST_METHOD, 'GET');
    assert.equal(get.PATH_INFO, '/again');
    assert.equal(get.CONTENT_LENGTH ?? '', '');
  } finally {
    await h2close(session);
  }
  // The same over HTTPS/1.1.
  const h1 = await new Promise<Record<string, string>>((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: portOf(simple!, 1), path: '/', rejectUnauthorized: false, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve(JSON.parse(body) as Record<string, string>));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(h1['wsgi.url_scheme'], 'https');
  assert.equal(h1.HTTPS, 'on');
  assert.equal(h1.SERVER_PROTOCOL, 'HTTP/1.1');
});

test('SNI: the certificate by exact name, wildcard, CN, explicit hosts; the first for unknown names and no SNI', { skip: NO_OPENSSL }, async () => {
  const port = portOf(site!, 0);
  const cases: [string | undefined, string][] = [
    ['a.test', 'a.test'],
    ['www.a.test', 'a.test'], // *.a.test in a's subjectAltName
    ['b.test', 'b.test'],
    ['B.Test', 'b.test'],
    ['c.test', 'c.test'], // no subjectAltName: its CN
    ['x.wild.test', 'd.test'], // hosts = ["*.wild.test"]
    ['d.test', 'a.test'], // explicit hosts replace d's own names
    ['deep.x.wild.test', 'a.test'], // a wildcard covers one label
    ['unknown.example', 'a.test'],
    [undefined, 'a.test'],
  ];
  for (const [servername, cn] of cases) {
    const got = await handshake(port, servername === undefined ? {} : { servername });
    assert.equal(got.cn, cn, `certificate for SNI ${servername ?? '(none)'}`);
  }
});

test('routing by :authority over HTTP/2, with the certificate chosen by SNI; redirect and return actions', { skip: NO_OPENSSL }, async () => {
  const port = portOf(site!, 0);
  for (const name of ['a', 'b']) {
    const session = await h2session(port, `${name}.test`);
    try {
      const r = await h2request(session, '/site');
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), `site ${name}`);
      // A host with routes of its own sees only those.
      assert.equal((await h2request(session, '/go/x')).status, 404);
      // Other hosts get the routes without a host.
      const go = await h2request(session, '/go/x?y=1', { headers: { ':authority': `shop.test:${port}` } });
      assert.equal(go.status, 302);
      assert.equal(go.headers.location, `https://shop.test:${port}/elsewhere/x?y=1`);
    } finally {
      await h2close(session);
    }
  }
});

test('tls_min_version = "1.3" refuses a TLS 1.2-only client; the default accepts it; http2 = false offers no h2', { skip: NO_OPENSSL }, async () => {
  const strict = portOf(site!, 1);
  await assert.rejects(handshake(strict, { maxVersion: 'TLSv1.2' }), 'a TLS 1.2 client is refused');
  const modern = await handshake(strict, { ALPNProtocols: ['h2', 'http/1.1'] });
  assert.equal(modern.protocol, 'TLSv1.3');
  assert.equal(modern.cn, 'b.test');
  assert.equal(modern.alpn, 'http/1.1', 'http2 = false: no h2 offered');
  const old = await handshake(portOf(site!, 0), { maxVersion: 'TLSv1.2', ALPNProtocols: ['h2', 'http/1.1'] });
  assert.equal(old.protocol, 'TLSv1.2');
  assert.equal(old.alpn, 'h2');
});

test('http2 = false: curl --http2 gets HTTP/1.1 over TLS', { skip: NO_CURL }, async () => {
  const r = await run('curl', ['-sk', '--http2', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', `https://${site!.addresses[1]}/`]);
  assert.equal(r.stdout, '200 1.1');
});

test('redirect_https: a plain listener answers 301 (GET) or 308 (POST) to https on the given port; 414 to a target too long', { skip: NO_OPENSSL }, async () => {
  const base = `http://${site!.addresses[2]}`;
  const get = await request(base, '/some/path?q=1', { headers: { Host: 'shop.test:8080' } });
  assert.equal(get.status, 301);
  assert.equal(get.headers.location, 'https://shop.test:8443/some/path?q=1');
  const post = await request(base, '/form', { method: 'POST', headers: { Host: 'shop.test' }, body: 'x=1' });
  assert.equal(post.status, 308);
  assert.equal(post.headers.location, 'https://shop.test:8443/form');
  // node:http reads every request there: a target of 16k (the default limit) in pieces gets 414 all the same.
  const c = await RawConnection.open(portOf(site!, 2));
  try {
    const line = `GET /${'t'.repeat(16383)} HTTP/1.1\r\nHost: shop.test\r\n\r\n`;
    for (let at = 0; at < line.length; at += 6000) {
      c.write(line.slice(at, at + 6000));
      await sleep(30);
    }
    const long = await c.readResponse();
    assert.equal(`${long.status} ${long.reason}`, '414 URI Too Long');
    await c.waitClosed();
  } finally {
    c.close();
  }
});

test('HTTP/2 responses: one-piece, streamed, file_wrapper file, spooled to a slow reader, HEAD, 413 refusal', { skip: NO_OPENSSL }, async () => {
  const session = await h2session(portOf(site!, 0));
  try {
    const one = await h2request(session, '/cases/one');
    assert.equal(one.body.toString(), 'hello, world');
    const gen = await h2request(session, '/cases/gen');
    assert.equal(gen.body.toString(), 'abcdef');
    const blob = readFileSync(join(tmp, 'public', 'blob.bin'));
    const file = await h2request(session, `/cases/file?path=${encodeURIComponent(join(tmp, 'public', 'blob.bin'))}`);
    assert.equal(file.status, 200);
    assert.ok(file.body.equals(blob), 'the file_wrapper file arrives whole');
    // 5 MB to a reader that waits before reading: more than the front keeps in memory.
    const size = 5_000_000;
    const stream = session.request({ ':path': `/cases/bytesio?size=${size}` });
    stream.pause();
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    setTimeout(() => stream.resume(), 1000);
    await new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    assert.ok(Buffer.concat(chunks).equals(pattern(size)), 'the spooled response arrives whole and in order');
    const head = await h2request(session, '/cases/one', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    const big = await h2request(session, '/', { method: 'POST', headers: { 'content-length': String(2 * 1024 * 1024) }, body: Buffer.alloc(2 * 1024 * 1024) }).catch((e: Error) => e);
    if (!(big instanceof Error)) assert.equal(big.status, 413);
    const after = await h2request(session, '/cases/one');
    assert.equal(after.status, 200, 'the session still serves after a refused stream');
  } finally {
    await h2close(session);
  }
});

function pattern(size: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i <= Math.floor(size / 32); i++) parts.push(createHash('sha256').update(String(i)).digest());
  return Buffer.concat(parts).subarray(0, size);
}

test('HTTP/2 request bodies: with Content-Length, without one, and spilled to a file past 256 KiB reach the app', { skip: NO_OPENSSL }, async () => {
  const session = await h2session(portOf(site!, 0));
  try {
    const sized = await h2request(session, '/post', { method: 'POST', headers: { 'content-length': '11' }, body: 'hello there' });
    assert.equal(JSON.parse(sized.body.toString()).body, 'hello there');
    // No Content-Length: the body is the DATA frames up to END_STREAM.
    const unsized = await h2request(session, '/post', { method: 'POST', body: 'streamed body' });
    const echoed = JSON.parse(unsized.body.toString()) as { body: string; content_length: string };
    assert.equal(echoed.body, 'streamed body');
    assert.equal(echoed.content_length, '13');
    const large = Buffer.alloc(400_000, 'x');
    const spilled = await h2request(session, '/post', { method: 'PUT', body: large });
    assert.equal((JSON.parse(spilled.body.toString()) as { body: string }).body.length, large.length);
  } finally {
    await h2close(session);
  }
});

test('HTTP/2 streams: Expect: 100-continue, a gzip answer, app and static file on one session, each in the access log', { skip: NO_OPENSSL }, async () => {
  const session = await h2session(portOf(site!, 0));
  const tag = randomBytes(4).toString('hex');
  try {
    // Expect: the 100 comes first (the client sends the body only then), then the answer.
    const continued = await new Promise<{ interim: number[]; status: number; body: string }>((resolve, reject) => {
      const stream = session.request({ ':path': `/post-${tag}`, ':method': 'POST', expect: '100-continue', 'content-length': '5' }, { endStream: false });
      const interim: number[] = [];
      let status = 0;
      const chunks: Buffer[] = [];
      stream.on('continue', () => {
        interim.push(100);
        stream.end('hello');
      });
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', reject);
      stream.on('end', () => resolve({ interim, status, body: Buffer.concat(chunks).toString() }));
    });
    assert.deepEqual(continued.interim, [100]);
    assert.equal(continued.status, 200);
    assert.equal((JSON.parse(continued.body) as { body: string }).body, 'hello');
    // A compressible answer past compress_min_size is gzipped on the stream.
    const text = 'gatehouse '.repeat(500);
    const zipped = await h2request(session, `/post-${tag}`, { method: 'POST', headers: { 'accept-encoding': 'gzip' }, body: text });
    assert.equal(zipped.headers['content-encoding'], 'gzip');
    assert.equal((JSON.parse(gunzipSync(zipped.body).toString()) as { body: string }).body, text);
    // A static file (node:http2's own objects, made for that action) beside the app's streams.
    const css = await h2request(session, `/static/style.css?${tag}`);
    assert.equal(css.status, 200);
    assert.equal(css.body.toString(), CSS);
    const missing = await h2request(session, `/static/none-${tag}.css`);
    assert.equal(missing.status, 404);
  } finally {
    await h2close(session);
  }
  assert.ok(await waitUntil(() => accessLines().filter((l) => l.includes(tag)).length === 4, 5000), accessLines().filter((l) => l.includes(tag)).join('\n'));
  const lines = accessLines().filter((l) => l.includes(tag));
  assert.ok(lines.every((l) => l.startsWith('127.0.0.1 ') && l.includes('HTTP/2.0"')), lines.join('\n'));
  assert.deepEqual(lines.map((l) => / (\d{3}) /.exec(l)?.[1]).sort(), ['200', '200', '200', '404']);
});

test('a body cut short (END_STREAM before its Content-Length) never reaches the app', { skip: NO_OPENSSL }, async () => {
  const session = await h2session(portOf(site!, 0));
  const path = `/truncated-${randomBytes(4).toString('hex')}`;
  try {
    const stream = session.request({ ':path': path, ':method': 'POST', 'content-length': '100000' }, { endStream: false });
    stream.on('error', () => {}); // the server resets it
    const closed = new Promise((r) => stream.on('close', r));
    stream.write(Buffer.alloc(1000, 'x'));
    await new Promise((r) => setTimeout(r, 100));
    stream.end();
    await closed;
    const after = await h2request(session, '/after');
    assert.equal(after.status, 200);
  } finally {
    await h2close(session);
  }
  assert.ok(await waitUntil(() => accessLines().some((l) => l.includes('/after')), 5000));
  assert.deepEqual(accessLines().filter((l) => l.includes(path) && / 200 /.test(l)), [], 'the app answered a truncated body');
});

test('static files over HTTP/2: content, type, ETag and 304, range; a directory: 301 to its slash form, 403 without an index file', { skip: NO_OPENSSL }, async () => {
  const session = await h2session(portOf(site!, 0));
  try {
    const css = await h2request(session, '/static/style.css');
    assert.equal(css.status, 200);
    assert.equal(css.body.toString(), CSS);
    assert.match(String(css.headers['content-type']), /^text\/css/);
    const etag = String(css.headers.etag);
    const again = await h2request(session, '/static/style.css', { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    assert.equal(again.body.length, 0);
    const range = await h2request(session, '/static/blob.bin', { headers: { range: 'bytes=10-19' } });
    assert.equal(range.status, 206);
    assert.ok(range.body.equals(readFileSync(join(tmp, 'public', 'blob.bin')).subarray(10, 20)));
    const bare = await h2request(session, '/static/no-index');
    assert.equal(bare.status, 301);
    assert.equal(bare.headers.location, '/static/no-index/');
    assert.equal((await h2request(session, '/static/no-index/')).status, 403);
    assert.equal((await h2request(session, '/static/no-such-dir/')).status, 404);
  } finally {
    await h2close(session);
  }
});

test('many concurrent streams: h2load -n 2000 -c 4 -m 10 on an app route and a static file, all 2xx', { skip: NO_H2LOAD }, async () => {
  for (const path of ['/hello', '/static/style.css']) {
    const r = await run('h2load', ['-n', '2000', '-c', '4', '-m', '10', '-T', '20', `https://${site!.addresses[0]}${path}`], 60_000);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored, 0 timeout/, r.stdout);
    assert.match(r.stdout, /status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx/, r.stdout);
    const rate = /finished in [^,]+, ([\d.]+) req\/s/.exec(r.stdout)?.[1];
    console.log(`# h2load ${path}: ${rate} req/s`);
  }
});

test('a stream reset by the client cancels its request only: the other streams on the session are answered', { skip: NO_OPENSSL }, async () => {
  const session = await h2session(portOf(site!, 0));
  const tag = randomBytes(4).toString('hex');
  try {
    const slow = session.request({ ':path': `/slow?ms=3000&tag=${tag}` });
    slow.on('error', () => {});
    const before = h2request(session, `/before?tag=${tag}`);
    // Reset once the server has it (the app is sleeping on it).
    await new Promise((r) => setTimeout(r, 300));
    slow.close(h2.NGHTTP2_CANCEL);
    const others = await Promise.all([before, ...Array.from({ length: 10 }, (_, i) => h2request(session, `/other-${i}?tag=${tag}`))]);
    for (const r of others) assert.equal(r.status, 200);
    assert.equal(slow.rstCode, h2.NGHTTP2_CANCEL);
  } finally {
    await h2close(session);
  }
  // The reset request is logged as nginx does (499), with the client's address.
  assert.ok(await waitUntil(() => accessLines().some((l) => l.includes(`/slow?ms=3000&tag=${tag}`)), 5000), 'the reset request is logged');
  const line = accessLines().find((l) => l.includes(`/slow?ms=3000&tag=${tag}`))!;
  assert.match(line, /^127\.0\.0\.1 - - .*"GET \/slow\?ms=3000&tag=\w+ HTTP\/2\.0" 499 - /);
  // The log file is written asynchronously: wait for the answered requests' lines too.
  const answered = () => accessLines().filter((l) => l.includes(tag) && / 200 /.test(l)).length;
  await waitUntil(() => answered() >= 11, 5000);
  assert.equal(answered(), 11);
});

test('HTTP/1.1 on a TLS port keeps the HTTP/1 limits: a head over --max-header-size gets 431', { skip: NO_OPENSSL }, async () => {
  const gh = await launch(['--certfile', cert('a'), '--keyfile', key('a'), '--max-header-size', '4k', ECHO]);
  try {
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest(
        { host: '127.0.0.1', port: gh.port, path: '/', headers: { 'x-big': 'a'.repeat(6000) }, rejectUnauthorized: false, agent: false },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 431);
  } finally {
    await gh.kill();
  }
});

/** A request on `session` that is expected to be reset: its status (0: none) and the reset code. */
function h2reset(session: ClientHttp2Session, path: string): Promise<{ status: number; rstCode: number }> {
  return new Promise((resolve) => {
    const stream = session.request({ ':path': path });
    let status = 0;
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', () => {});
    stream.on('error', () => {});
    stream.on('close', () => resolve({ status, rstCode: stream.rstCode ?? 0 }));
  });
}

test('HTTP/2 holds a header list to --max-header-size from the first request, before the client has acknowledged that limit', { skip: NO_OPENSSL }, async () => {
  const gh = await launch(['--certfile', cert('a'), '--keyfile', key('a'), '--max-header-size', '4k', ECHO]);
  const session = h2connect(`https://127.0.0.1:${gh.port}`, { rejectUnauthorized: false });
  session.on('error', () => {});
  try {
    // Issued before the session connects: it goes out with the client's preface, before the client has
    // the server's SETTINGS to acknowledge, when nghttp2 does not yet apply the limit they announce.
    const first = h2reset(session, '/' + 'a'.repeat(6000));
    assert.deepEqual(await first, { status: 0, rstCode: h2.NGHTTP2_ENHANCE_YOUR_CALM });
    // The session goes on; nghttp2 says the same once the limit is acknowledged.
    assert.equal((await h2request(session, '/after')).status, 200);
    assert.deepEqual(await h2reset(session, '/' + 'a'.repeat(6000)), { status: 0, rstCode: h2.NGHTTP2_ENHANCE_YOUR_CALM });
    assert.equal((await h2request(session, '/' + 'b'.repeat(3000))).status, 200);
    // Under the limit, a first request is served.
    const second = h2connect(`https://127.0.0.1:${gh.port}`, { rejectUnauthorized: false });
    try {
      assert.equal((await h2request(second, '/' + 'b'.repeat(3000))).status, 200);
    } finally {
      second.close();
    }
  } finally {
    session.close();
    await gh.kill();
  }
});

test('SIGTERM drains HTTP/2: GOAWAY to the client, the stream under way is answered, then the server exits', { skip: NO_OPENSSL }, async () => {
  // Long keep-alive and grace: without GOAWAY the session would hold the server for 20 s.
  const gh = await launch(['--certfile', cert('a'), '--keyfile', key('a'), '--graceful-timeout', '20', '--keepalive-timeout', '60', '--workers', '2', ECHO]);
  let session: ClientHttp2Session | null = null;
  try {
    session = await h2session(gh.port);
    const goaway = new Promise<void>((resolve) => session!.once('goaway', () => resolve()));
    session.on('error', () => {});
    const slow = h2request(session, '/slow?ms=1500');
    await new Promise((r) => setTimeout(r, 300));
    gh.proc.kill('SIGTERM');
    await within(goaway, 10_000, 'GOAWAY after SIGTERM');
    const answered = await slow;
    assert.equal(answered.status, 200);
    assert.equal(JSON.parse(answered.body.toString()).path, '/slow');
    const exit = await gh.exited(10_000);
    assert.equal(exit.code, 0);
  } finally {
    session?.destroy();
    await gh.kill();
  }
});

test('a bad certificate or key is a config error naming the setting', { skip: NO_OPENSSL }, async () => {
  writeFileSync(join(tmp, 'garbage.pem'), 'not a certificate\n');
  const flags = await runCli(['--certfile', cert('a'), '--keyfile', key('b'), '--bind', '127.0.0.1:0', ECHO]);
  assert.equal(flags.code, 1, flags.stderr);
  assert.match(flags.stderr, /GH_ERR_CONFIG.*--certfile: cannot use this certificate and key/);
  assert.doesNotMatch(flags.stderr, /\n\s+at /, 'no stack trace');

  const file = join(tmp, 'bad.toml');
  writeFileSync(
    file,
    `app = "${ECHO}"
[[listeners]]
bind = "127.0.0.1:0"
certfile = "garbage.pem"
keyfile = "a.key"
[[listeners]]
bind = "127.0.0.1:0"
certificates = [{ certfile = "a.crt", keyfile = "a.key" }, { certfile = "b.crt", keyfile = "a.key" }]
`,
  );
  const config = await runCli(['--config', file]);
  assert.equal(config.code, 1, config.stderr);
  assert.match(config.stderr, /listeners\[0\]\.certfile: cannot use this certificate and key/);
  assert.match(config.stderr, /listeners\[1\]\.certificates\[1\]\.certfile: cannot use this certificate and key/);
});

test('over HTTP/2 the front drops the reason phrase and connection-specific headers instead of failing the response', { skip: NO_OPENSSL }, async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on('warning', onWarning);
  const server = createSecureServer(
    { cert: readFileSync(cert('a')), key: readFileSync(key('a')), Http2ServerRequest: H2Request, Http2ServerResponse: CompatResponse },
    (_req, res) => {
      res.setHeader('Keep-Alive', 'timeout=5');
      // What the front's HTTP/1 habits (and an upstream's headers) could hand it: a flat list, as a worker's head is.
      res.writeHead(200, 'Fine', ['Content-Type', 'text/plain', 'Transfer-Encoding', 'chunked', 'Connection', 'close', 'Upgrade', 'h2c', 'X-Kept', 'yes'] as unknown as OutgoingHttpHeaders);
      res.end('ok');
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const session = await h2session((server.address() as { port: number }).port);
    try {
      const r = await h2request(session, '/');
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'ok');
      assert.equal(r.headers['x-kept'], 'yes');
      assert.equal(r.headers['content-type'], 'text/plain');
      for (const name of ['transfer-encoding', 'connection', 'upgrade', 'keep-alive']) assert.equal(r.headers[name], undefined, name);
    } finally {
      await h2close(session);
    }
  } finally {
    server.close();
    process.off('warning', onWarning);
  }
  assert.deepEqual(warnings, [], 'no UnsupportedWarning from Node');
});

test('keepalive_timeout closes an idle HTTP/2 session with GOAWAY', { skip: NO_OPENSSL }, async () => {
  const gh = await launch(['--certfile', cert('a'), '--keyfile', key('a'), '--keepalive-timeout', '1', ECHO]);
  let session: ClientHttp2Session | null = null;
  try {
    session = await h2session(gh.port);
    session.on('error', () => {});
    const goaway = new Promise<void>((resolve) => session!.once('goaway', () => resolve()));
    assert.equal((await h2request(session, '/')).status, 200);
    await within(goaway, 10_000, 'GOAWAY on the idle session');
  } finally {
    session?.destroy();
    await gh.kill();
  }
});

test('keepalive_timeout leaves an HTTP/2 session alone while a stream is under way, then closes it', { skip: NO_OPENSSL }, async () => {
  const gh = await launch(['--certfile', cert('a'), '--keyfile', key('a'), '--keepalive-timeout', '1', ECHO]);
  let session: ClientHttp2Session | null = null;
  try {
    session = await h2session(gh.port);
    session.on('error', () => {});
    let goawayAt: 'during' | 'after' | null = null;
    let answered = false;
    const goaway = new Promise<void>((resolve) => session!.once('goaway', () => resolve(void (goawayAt = answered ? 'after' : 'during'))));
    // The app sleeps past the timeout: the session is quiet, but a stream is open.
    const slow = await h2request(session, '/slow?ms=2500');
    answered = true;
    assert.equal(slow.status, 200);
    await within(goaway, 10_000, 'GOAWAY once the session is idle');
    assert.equal(goawayAt, 'after');
  } finally {
    session?.destroy();
    await gh.kill();
  }
});

// ---------------------------------------------------------------- SIGHUP: certificates reloaded

/** Copies certificate `from` and its key over `to.crt` / `to.key`, as a renewal does. */
function installCertificate(from: string, to: string): void {
  copyFileSync(cert(from), cert(to));
  copyFileSync(key(from), key(to));
}

function fingerprintOf(name: string): string {
  return new X509Certificate(readFileSync(cert(name))).fingerprint256;
}

/** Polls new handshakes (at most 10 s) until `port` presents certificate `name` for `servername`. */
async function presents(port: number, name: string, servername?: string): Promise<boolean> {
  const wanted = fingerprintOf(name);
  for (let i = 0; i < 100; i++) {
    if ((await handshake(port, servername === undefined ? {} : { servername })).fingerprint === wanted) return true;
    await sleep(100);
  }
  return false;
}

/** A GET over HTTPS/1.1 on a new connection: status and body. */
function httpsGet(port: number, path: string, servername?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, servername, rejectUnauthorized: false, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A gatehouse with no app (no worker) on one TLS listener described by `tls` (TOML lines). */
function launchTls(name: string, tls: string): Promise<Server> {
  const file = join(tmp, `${name}.toml`);
  writeFileSync(file, `[[listeners]]\nbind = "127.0.0.1:0"\n${tls}\n\n[[routes]]\npath = "/"\nreturn = { status = 200, body = "ok" }\n`);
  return launch(['--config', file], { workers: 0 });
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

test('SIGHUP reloads a renewed certificate: new connections get it, open ones keep theirs, tls_min_version holds', { skip: NO_OPENSSL }, async () => {
  installCertificate('a', 'renew');
  const gh = await launchTls('renew', 'certfile = "renew.crt"\nkeyfile = "renew.key"\ntls_min_version = "1.3"');
  let session: ClientHttp2Session | null = null;
  try {
    assert.equal((await handshake(gh.port)).cn, 'a.test');
    session = await h2session(gh.port);
    installCertificate('b', 'renew');
    gh.proc.kill('SIGHUP');
    assert.ok(await presents(gh.port, 'b'), 'a new connection gets the renewed certificate');
    await gh.waitFor(/\[INFO\] Reloaded the certificates of listener 127\.0\.0\.1:0 \(SIGHUP\)/);
    assert.deepEqual(await httpsGet(gh.port, '/'), { status: 200, body: 'ok' });
    const fresh = await h2session(gh.port);
    try {
      assert.equal((await h2request(fresh, '/')).status, 200, 'HTTP/2 on the renewed certificate');
    } finally {
      await h2close(fresh);
    }
    // The connection made before the reload keeps its certificate and still serves.
    const before = (session.socket as unknown as { getPeerCertificate(): { subject: { CN: string } } }).getPeerCertificate();
    assert.equal(before.subject.CN, 'a.test');
    assert.equal((await h2request(session, '/')).status, 200);
    await assert.rejects(handshake(gh.port, { maxVersion: 'TLSv1.2' }), 'still TLS 1.3 only after the reload');
  } finally {
    session?.destroy();
    await gh.kill();
  }
});

test('SIGHUP with SNI: the renewed one of several certificates is served for its name, the others stay', { skip: NO_OPENSSL }, async () => {
  installCertificate('a', 'sni-one');
  installCertificate('b', 'sni-two');
  const gh = await launchTls('sni', 'certificates = [{ certfile = "sni-one.crt", keyfile = "sni-one.key" }, { certfile = "sni-two.crt", keyfile = "sni-two.key" }]');
  try {
    assert.equal((await handshake(gh.port, { servername: 'b.test' })).fingerprint, fingerprintOf('b'));
    installCertificate('b2', 'sni-two');
    gh.proc.kill('SIGHUP');
    assert.ok(await presents(gh.port, 'b2', 'b.test'), 'b.test gets its renewed certificate');
    assert.equal((await handshake(gh.port, { servername: 'a.test' })).fingerprint, fingerprintOf('a'));
    assert.equal((await handshake(gh.port)).fingerprint, fingerprintOf('a'), 'no SNI: still the first certificate');
    assert.deepEqual(await httpsGet(gh.port, '/', 'b.test'), { status: 200, body: 'ok' });
    const session = await h2session(gh.port, 'b.test');
    try {
      const r = await h2request(session, '/');
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'ok');
    } finally {
      await h2close(session);
    }
  } finally {
    await gh.kill();
  }
});

test('SIGHUP with a file that cannot be used: the server keeps every old certificate and logs the file and why', { skip: NO_OPENSSL }, async () => {
  installCertificate('a', 'bad-one');
  installCertificate('b', 'bad-two');
  const gh = await launchTls('bad', 'certificates = [{ certfile = "bad-one.crt", keyfile = "bad-one.key" }, { certfile = "bad-two.crt", keyfile = "bad-two.key" }]');
  const notReloaded = 'ERROR\\] Certificates of listener 127\\.0\\.0\\.1:0 not reloaded, the old ones keep serving: ';
  try {
    const cases: [string, () => void, RegExp][] = [
      // A good new first certificate, but the second one's key is another certificate's: nothing is swapped.
      [
        'a key of another certificate',
        () => {
          installCertificate('d', 'bad-one');
          copyFileSync(cert('b2'), cert('bad-two'));
        },
        new RegExp(`${notReloaded}${escapeRegExp(key('bad-two'))}: not the key of ${escapeRegExp(cert('bad-two'))}: .*key values mismatch`),
      ],
      [
        'a certificate file that is not PEM',
        () => {
          copyFileSync(key('b2'), key('bad-two'));
          writeFileSync(cert('bad-one'), 'not a certificate\n');
        },
        new RegExp(`${notReloaded}${escapeRegExp(cert('bad-one'))}: not a usable certificate: `),
      ],
      [
        'a missing key',
        () => {
          copyFileSync(cert('d'), cert('bad-one'));
          unlinkSync(key('bad-one'));
        },
        new RegExp(`${notReloaded}cannot read ${escapeRegExp(key('bad-one'))}: ENOENT`),
      ],
      [
        'a key file that is not a key',
        () => writeFileSync(key('bad-one'), 'not a key\n'),
        new RegExp(`${notReloaded}${escapeRegExp(key('bad-one'))}: not a usable private key: `),
      ],
    ];
    for (const [what, breakFiles, logged] of cases) {
      breakFiles();
      gh.proc.kill('SIGHUP');
      await gh.waitFor(logged, 10_000);
      assert.equal(gh.proc.exitCode, null, `${what}: the server is still running`);
      assert.equal((await handshake(gh.port)).fingerprint, fingerprintOf('a'), `${what}: the old default certificate`);
      assert.equal((await handshake(gh.port, { servername: 'b.test' })).fingerprint, fingerprintOf('b'), `${what}: the old b.test certificate`);
      assert.equal((await httpsGet(gh.port, '/')).status, 200, `${what}: HTTPS still served`);
    }
    assert.doesNotMatch(gh.output(), /Reloaded the certificates/);
    // Once the files are right again, the next SIGHUP serves them.
    copyFileSync(key('d'), key('bad-one'));
    gh.proc.kill('SIGHUP');
    assert.ok(await presents(gh.port, 'd'), 'the repaired files are served');
    assert.ok(await presents(gh.port, 'b2', 'b.test'));
  } finally {
    await gh.kill();
  }
});
