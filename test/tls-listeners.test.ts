/**
 * TLS on the front's listeners (test/helpers/tls-site.ts): --certfile and
 * --keyfile on every --bind, HTTP/2 by ALPN with HTTP/1.1 on the same port
 * (and http2 = false), the environ of a TLS request, certificates picked by
 * SNI (subjectAltName, CN, explicit and wildcard hosts, the default),
 * routing by :authority, tls_min_version, redirect_https, and bad
 * certificates as config errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from './helpers/launch.js';
import { RawConnection } from './helpers/raw-connection.js';
import { request } from './helpers/request.js';
import { h2close, h2request, h2session, handshake, run } from './helpers/tls-clients.js';
import { cert, ECHO, key, NO_CURL, NO_OPENSSL, portOf, serveTlsSite, simple, site, tmp } from './helpers/tls-site.js';
import { sleep } from './helpers/wait.js';

serveTlsSite({ site: true, simple: true });

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
