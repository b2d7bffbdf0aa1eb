/**
 * PEP 3333 conformance, end to end (test/helpers/wsgi-cases.ts): the
 * environ a request becomes, its required keys and their types, PATH_INFO and
 * QUERY_STRING, CONTENT_TYPE and CONTENT_LENGTH, repeated and odd headers, a
 * chunked body, and SERVER_NAME/SERVER_PORT on TCP and unix sockets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { APPS } from './helpers/gatehouse.js';
import { launch } from './helpers/launch.js';
import { getEnviron, gh, parseResponse, rawRequest, scratch, serveWsgiCases, T, type Environ } from './helpers/wsgi-cases.js';

serveWsgiCases();

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
