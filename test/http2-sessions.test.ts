/**
 * HTTP/2 sessions on servers of their own (test/helpers/tls-site.ts's
 * certificates): the header size limit (431 for HTTP/1.1 on the TLS port,
 * a reset stream for HTTP/2 from the first request), draining with GOAWAY on
 * SIGTERM, keepalive_timeout on idle and busy sessions, and the compat
 * layer dropping what HTTP/2 has no place for instead of failing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect as h2connect, constants as h2, createSecureServer, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { H2Request, H2Response as CompatResponse } from '../src/front/h2-compat.js';
import { launch } from './helpers/launch.js';
import { h2close, h2request, h2session, within } from './helpers/tls-clients.js';
import { cert, ECHO, key, NO_OPENSSL, serveTlsSite } from './helpers/tls-site.js';

serveTlsSite();

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
