/**
 * forwarded_allow_ips: X-Forwarded-For / -Proto / -Host and RFC 7239
 * Forwarded are believed from trusted peers only. The app (basic.py's
 * echo_environ) shows what it got: REMOTE_ADDR, wsgi.url_scheme, HTTPS,
 * HTTP_HOST and which proxy headers reached it.
 *
 * `trusted`: 127.0.0.0/8, 10.0.0.0/8 and unix sockets are trusted; its TCP
 * listener is [::]:0, so 127.0.0.1 arrives as the v4-mapped ::ffff:127.0.0.1.
 * `untrusted`: only 10.0.0.0/8 and 192.0.2.1, neither the test's address nor
 * unix sockets.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS } from './helpers/gatehouse.js';
import { launch, runCli, type Server } from './helpers/launch.js';
import { RawConnection } from './helpers/raw-connection.js';
import { request } from './helpers/request.js';
import { waitUntil } from './helpers/wait.js';

const APP = `${APPS}/basic.py:echo_environ`;
type Environ = Record<string, string | boolean | null>;

const dir = mkdtempSync(join(tmpdir(), 'gh-forwarded-'));
const trustedSock = join(dir, 'trusted.sock');
const untrustedSock = join(dir, 'untrusted.sock');
const accessLog = join(dir, 'access.log');
let trusted: Server;
let untrusted: Server;
let plain: Server;
/** The trusted server's listener that redirects plain http to https. */
let redirectPort = 0;

const config = (allow: string[], listeners: string, extra = '') =>
  `workers = 1\nforwarded_allow_ips = ${JSON.stringify(allow)}\n${extra}\n${listeners}\n` +
  `[apps.main]\napp = "${APP}"\n\n[[routes]]\npath = "/"\napp = "main"\n\n` +
  `[[routes]]\nhost = "example.com"\nreturn = { status = 200, body = "the example.com route" }\n`;

before(async () => {
  const trustedConf = join(dir, 'trusted.toml');
  writeFileSync(
    trustedConf,
    config(
      ['127.0.0.0/8', '10.0.0.0/8', 'unix'],
      `[[listeners]]\nbind = "[::]:0"\n\n[[listeners]]\nbind = "unix:${trustedSock}"\n\n[[listeners]]\nbind = "127.0.0.1:0"\nredirect_https = true\n`,
      `access_log = "${accessLog}"\naccess_log_format = "%(h)s %(r)s"\n`,
    ),
  );
  const untrustedConf = join(dir, 'untrusted.toml');
  writeFileSync(untrustedConf, config(['10.0.0.0/8', '192.0.2.1'], `[[listeners]]\nbind = "127.0.0.1:0"\n\n[[listeners]]\nbind = "unix:${untrustedSock}"\n`));
  [trusted, untrusted, plain] = await Promise.all([
    launch(['--config', trustedConf], { workers: 1 }),
    launch(['--config', untrustedConf], { workers: 1 }),
    launch([APP]),
  ]);
  redirectPort = Number(/:(\d+)$/.exec(trusted.addresses[2]!)![1]);
});

after(async () => {
  await Promise.all([trusted?.kill(), untrusted?.kill(), plain?.kill()]);
  rmSync(dir, { recursive: true, force: true });
});

async function environ(target: number | { socketPath: string }, headers: Record<string, string>, path = '/'): Promise<Environ> {
  const res = await request(typeof target === 'number' ? `http://127.0.0.1:${target}` : target, path, { headers });
  assert.equal(res.status, 200, res.body);
  return JSON.parse(res.body) as Environ;
}

const SPOOF = {
  'X-Forwarded-For': '203.0.113.9',
  'X-Forwarded-Proto': 'https',
  'X-Forwarded-Host': 'spoofed.example',
  'X-Forwarded-Port': '443',
  Forwarded: 'for=203.0.113.9;proto=https;host=spoofed.example',
  'X-Real-IP': '203.0.113.9',
  'X-Other': 'kept',
};

function assertIgnored(env: Environ, remote: string, host: string): void {
  assert.equal(env.REMOTE_ADDR, remote);
  assert.equal(env['wsgi.url_scheme'], 'http');
  assert.equal(env.HTTPS, undefined);
  assert.equal(env.HTTP_HOST, host);
  for (const key of ['HTTP_X_FORWARDED_FOR', 'HTTP_X_FORWARDED_PROTO', 'HTTP_X_FORWARDED_HOST', 'HTTP_X_FORWARDED_PORT', 'HTTP_FORWARDED', 'HTTP_X_REAL_IP']) {
    assert.equal(env[key], undefined, `${key} must not reach the app from an untrusted peer`);
  }
  assert.equal(env.HTTP_X_OTHER, 'kept', 'other headers still pass');
}

test('by default no peer is trusted: the proxy headers are ignored and removed from the environ', async () => {
  const env = await environ(plain.port, { ...SPOOF, Host: 'real.test' });
  assertIgnored(env, '127.0.0.1', 'real.test');
});

test('from a peer not in forwarded_allow_ips the proxy headers are ignored and removed', async () => {
  const env = await environ(untrusted.port, { ...SPOOF, Host: 'real.test' });
  assertIgnored(env, '127.0.0.1', 'real.test');
});

test('a unix-socket peer is untrusted unless `unix` is listed', async () => {
  const env = await environ({ socketPath: untrustedSock }, { ...SPOOF, Host: 'real.test' });
  assertIgnored(env, '127.0.0.1', 'real.test');
  const ok = await environ({ socketPath: trustedSock }, { 'X-Forwarded-For': '198.51.100.4', 'X-Forwarded-Proto': 'https' });
  assert.equal(ok.REMOTE_ADDR, '198.51.100.4');
  assert.equal(ok['wsgi.url_scheme'], 'https');
});

test('a trusted peer (v4-mapped ::ffff:127.0.0.1 matched by 127.0.0.0/8) sets REMOTE_ADDR, the scheme and HTTP_HOST', async () => {
  const env = await environ(trusted.port, { 'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Proto': 'HTTPS', 'X-Forwarded-Host': 'www.example.org:8443' });
  assert.equal(env.REMOTE_ADDR, '203.0.113.7');
  assert.equal(env.REMOTE_PORT, '', 'the forwarded client has no known port');
  assert.equal(env['wsgi.url_scheme'], 'https');
  assert.equal(env.HTTPS, 'on');
  assert.equal(env.HTTP_HOST, 'www.example.org:8443');
  assert.equal(env.HTTP_X_FORWARDED_FOR, '203.0.113.7', 'from a trusted peer the headers stay visible');
  // The next request on another connection, without headers, is back to the peer itself.
  const bare = await environ(trusted.port, {});
  assert.equal(bare.REMOTE_ADDR, '127.0.0.1');
  assert.equal(bare['wsgi.url_scheme'], 'http');
});

test('X-Forwarded-For over several hops: the rightmost address that is not a trusted proxy', async () => {
  const cases: Array<[string, string]> = [
    ['203.0.113.7, 10.0.0.1, 10.0.0.2', '203.0.113.7'],
    // The client itself may have sent a fake first entry: it is skipped.
    ['198.51.100.66, 203.0.113.7, 10.0.0.2', '203.0.113.7'],
    // All trusted: the leftmost.
    ['10.0.0.3, 10.0.0.2', '10.0.0.3'],
    ['[2001:db8::5]:1234, 10.0.0.2', '2001:db8::5'],
    ['192.0.2.8:5555', '192.0.2.8'],
  ];
  for (const [xff, want] of cases) {
    assert.equal((await environ(trusted.port, { 'X-Forwarded-For': xff })).REMOTE_ADDR, want, `X-Forwarded-For: ${xff}`);
  }
  // Repeated headers count as one list.
  const c = await RawConnection.open(trusted.port);
  try {
    c.write('GET / HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 203.0.113.50\r\nX-Forwarded-For: 10.0.0.9\r\n\r\n');
    const env = JSON.parse((await c.readResponse()).body.toString()) as Environ;
    assert.equal(env.REMOTE_ADDR, '203.0.113.50');
  } finally {
    c.close();
  }
});

test('RFC 7239 Forwarded: for (quoted IPv6 with port), proto, host; it wins over X-Forwarded-*', async () => {
  const env = await environ(trusted.port, {
    Forwarded: 'for="[2001:db8:cafe::17]:4711";proto=https;host="shop.example.com", For=10.0.0.2',
    'X-Forwarded-For': '198.51.100.1',
    'X-Forwarded-Proto': 'http',
    'X-Forwarded-Host': 'other.example',
  });
  assert.equal(env.REMOTE_ADDR, '2001:db8:cafe::17');
  assert.equal(env.REMOTE_PORT, '4711');
  assert.equal(env['wsgi.url_scheme'], 'https');
  assert.equal(env.HTTP_HOST, 'shop.example.com');
  // Only for= given: proto still comes from X-Forwarded-Proto.
  const mixed = await environ(trusted.port, { Forwarded: 'for=192.0.2.60', 'X-Forwarded-Proto': 'https' });
  assert.equal(mixed.REMOTE_ADDR, '192.0.2.60');
  assert.equal(mixed['wsgi.url_scheme'], 'https');
});

test('bad forwarded values are ignored, each on its own', async () => {
  const bad = await environ(trusted.port, { 'X-Forwarded-For': 'not-an-ip', 'X-Forwarded-Proto': 'ftp', 'X-Forwarded-Host': 'evil host/x', Host: 'real.test' });
  assert.equal(bad.REMOTE_ADDR, '127.0.0.1');
  assert.equal(bad['wsgi.url_scheme'], 'http');
  assert.equal(bad.HTTP_HOST, 'real.test');
  // An address left of a bad entry is not believed.
  assert.equal((await environ(trusted.port, { 'X-Forwarded-For': '203.0.113.7, unknown' })).REMOTE_ADDR, '127.0.0.1');
  // A malformed Forwarded is dropped whole; X-Forwarded-For is used instead.
  const malformed = await environ(trusted.port, { Forwarded: 'for=[2001:db8::1];;proto', 'X-Forwarded-For': '203.0.113.8' });
  assert.equal(malformed.REMOTE_ADDR, '203.0.113.8');
  // for=unknown hides the client, but the hop's proto still counts.
  const unknown = await environ(trusted.port, { Forwarded: 'for=unknown;proto=https' });
  assert.equal(unknown.REMOTE_ADDR, '127.0.0.1');
  assert.equal(unknown['wsgi.url_scheme'], 'https');
});

test('routing uses the Host the peer sent; the app sees the forwarded one', async () => {
  const env = await environ(trusted.port, { Host: 'real.test', 'X-Forwarded-Host': 'example.com' });
  assert.equal(env.HTTP_HOST, 'example.com', 'served by the app route, not the example.com one');
  const routed = await request(`http://127.0.0.1:${trusted.port}`, '/', { headers: { Host: 'example.com' } });
  assert.equal(routed.body, 'the example.com route');
});

test('on a unix socket, SERVER_NAME/SERVER_PORT follow the forwarded host and scheme from a trusted proxy only', async () => {
  const pick = (e: Environ) => [e.SERVER_NAME, e.SERVER_PORT];
  const behindTls = await environ({ socketPath: trustedSock }, { Host: 'backend', 'X-Forwarded-Host': 'www.example.org', 'X-Forwarded-Proto': 'https' });
  assert.deepEqual(pick(behindTls), ['www.example.org', '443'], 'the forwarded scheme\'s port');
  const withPort = await environ({ socketPath: trustedSock }, { Host: 'backend', Forwarded: 'host="www.example.org:8443";proto=https' });
  assert.deepEqual(pick(withPort), ['www.example.org', '8443']);
  const hostOnly = await environ({ socketPath: trustedSock }, { Host: 'backend:81', 'X-Forwarded-Proto': 'https' });
  assert.deepEqual(pick(hostOnly), ['backend', '81'], 'no forwarded host: the Host the proxy sent');
  const spoofed = await environ({ socketPath: untrustedSock }, { ...SPOOF, Host: 'real.test' });
  assert.deepEqual(pick(spoofed), ['real.test', '80'], 'an untrusted peer cannot set them');
});

test('redirect_https is skipped when a trusted proxy says the client came over https', async () => {
  const viaTls = await request(`http://127.0.0.1:${redirectPort}`, '/page', { headers: { Host: 'site.test', 'X-Forwarded-Proto': 'https' } });
  assert.equal(viaTls.status, 200);
  const viaHttp = await request(`http://127.0.0.1:${redirectPort}`, '/page', { headers: { Host: 'site.test', 'X-Forwarded-Proto': 'http' } });
  assert.equal(viaHttp.status, 301);
  assert.equal(viaHttp.headers.location, 'https://site.test/page');
});

test('the access log shows the forwarded client for a trusted peer', async () => {
  await environ(trusted.port, { 'X-Forwarded-For': '203.0.113.99' }, '/logged-forwarded');
  await environ(trusted.port, {}, '/logged-direct');
  const lines = () => readFileSync(accessLog, 'utf8').split('\n');
  assert.ok(await waitUntil(() => lines().some((l) => l.includes('/logged-direct')), 3000), 'both lines written');
  assert.ok(lines().includes('203.0.113.99 GET /logged-forwarded HTTP/1.1'), lines().join('\n'));
  assert.ok(lines().includes('127.0.0.1 GET /logged-direct HTTP/1.1'), lines().join('\n'));
});

test('forwarded_allow_ips values are checked: a bad entry is a config error naming it', async () => {
  const r = await runCli([APP, '--forwarded-allow-ips', '127.0.0.1,10.0.0.0/33', '--check-config']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--forwarded-allow-ips.*CIDR/);
});
