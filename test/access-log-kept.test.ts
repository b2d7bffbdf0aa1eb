/**
 * AccessLog.kept(): the line written long after its request came (an open
 * WebSocket's, at its close) is the line write() gives for the same request,
 * for each kind of format, from the request headers the format reads, kept
 * when the request came: what happens to the request object later does not
 * show. Codec tier: the log writes to a temp file, no server.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccessLog } from '../src/log/access-log.js';
import type { LoggedRequest } from '../src/log/access-log-format.js';

const dir = mkdtempSync(join(tmpdir(), 'gh-access-kept-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function request(): LoggedRequest {
  return {
    method: 'GET',
    url: '/chat?room=7',
    httpVersion: '1.1',
    headers: { referer: 'http://example.test/', 'user-agent': 'kept/1', authorization: 'Basic dXNlcjpwdw==', host: 'example.test', 'x-trace': 't-1', cookie: 'c' },
  };
}

/** The lines `format` gives for the same request by write() and by kept(), the request's headers emptied in between. */
async function bothLines(format: string, name: string): Promise<[string, string]> {
  const file = join(dir, `${name}.log`);
  const log = new AccessLog<LoggedRequest>(file, format, (err) => assert.fail(err), () => '203.0.113.9');
  const req = request();
  log.write(req, 101, 129);
  const line = log.kept(req);
  for (const key of Object.keys(req.headers)) delete req.headers[key];
  req.url = '/changed';
  line(101, 129);
  await log.close();
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 2);
  return [lines[0]!, lines[1]!];
}

const cases: Array<{ name: string; format: string; expect: RegExp }> = [
  { name: 'combined', format: 'combined', expect: /^203\.0\.113\.9 - user \[[^\]]+\] "GET \/chat\?room=7 HTTP\/1\.1" 101 129 "http:\/\/example\.test\/" "kept\/1"$/ },
  { name: 'atoms', format: '%(h)s %(m)s %(U)s %(q)s %({X-Trace}i)s %({Cookie}i)s %(a)s %(s)s', expect: /^203\.0\.113\.9 GET \/chat room=7 t-1 c kept\/1 101$/ },
];

for (const c of cases) {
  test(`kept() writes the line write() does: ${c.name}`, async () => {
    const [written, kept] = await bothLines(c.format, c.name);
    assert.match(written, c.expect);
    assert.match(kept, c.expect);
  });
}

test('kept() writes the line write() does: json (time and duration aside)', async () => {
  const [written, kept] = await bothLines('json', 'json');
  const strip = (l: string) => ({ ...JSON.parse(l), time: undefined, duration_ms: undefined });
  assert.deepEqual(strip(kept), strip(written));
  assert.deepEqual(strip(kept), { remote_addr: '203.0.113.9', method: 'GET', path: '/chat?room=7', protocol: 'HTTP/1.1', status: 101, bytes: 129, referer: 'http://example.test/', user_agent: 'kept/1', host: 'example.test', time: undefined, duration_ms: undefined });
});
