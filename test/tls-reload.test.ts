/**
 * Certificates reloaded on SIGHUP (test/helpers/tls-site.ts's
 * certificates, renewed by copying others over them): new connections get
 * the new certificate and open ones keep theirs, with SNI the renewed one of
 * several, and a file that cannot be used leaves every old certificate
 * serving, with the file and why in the log (all or nothing).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import type { ClientHttp2Session } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { launch, type Server } from './helpers/launch.js';
import { h2close, h2request, h2session, handshake } from './helpers/tls-clients.js';
import { cert, key, NO_OPENSSL, serveTlsSite, tmp } from './helpers/tls-site.js';
import { sleep } from './helpers/wait.js';

serveTlsSite();

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
