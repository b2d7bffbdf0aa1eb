/**
 * The proxy's backup upstreams, temp file for slow clients, compression of
 * upstream responses (proxy and FastCGI), the streamed body limit and host
 * names resolved once per resolve_ttl: a real gatehouse on loopback in
 * front of scripted upstreams (test/helpers/upstreams.ts) and php-fpm.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DnsCache } from '../src/upstream/dns-cache.js';
import { hasPhpFpm, startPhpFpm, tempDir, type Peer } from './helpers/back-ends.js';
import { launch, runCli, type Server } from './helpers/launch.js';
import { RawConnection } from './helpers/raw-connection.js';
import { request } from './helpers/request.js';
import { sleep } from './helpers/wait.js';
import { finishedWhileClientStalls, refusedAddress, startUpstream, type Upstream } from './helpers/upstreams.js';

const tmp = tempDir('proxy-extras');
let server: Server;
let fpm: Peer | null = null;
let fpm1: Peer | null = null;
const ups: Record<string, Upstream> = {};

before(async () => {
  for (const name of ['a', 'b', 'big']) ups[name] = await startUpstream(name);
  const refused = await refusedAddress();
  const a = ups.a!.address;
  const b = ups.b!.address;
  const big = ups.big!.address;
  const localhost = `localhost:${a.split(':')[1]}`;
  const phpRoot = join(tmp.dir, 'www');
  const routes = [
    ['/backup-used', `upstreams = ["${refused}", { address = "${b}", backup = true }]`],
    ['/backup-idle', `upstreams = ["${a}", { address = "${b}", backup = true }]`],
    ['/spill', `upstreams = ["${big}"]\nbuffer_size = "1m"`],
    ['/nospill', `upstreams = ["${big}"]\nbuffer_size = "1m"\nmax_temp_file_size = 0`],
    ['/capped', `upstreams = ["${a}"]\nrequest_buffering = false`],
    ['/named', `upstreams = ["${localhost}"]\nresolve_ttl = 0.5`],
    ['/z', `upstreams = ["${a}"]`],
  ];
  let config = `[[listeners]]\nbind = "127.0.0.1:0"\n`;
  for (const [path, proxy] of routes) config += `[[routes]]\npath = "${path}"\nmax_request_body = "1k"\n[routes.proxy]\n${proxy}\n`;
  if (hasPhpFpm()) {
    // SCRIPT_FILENAME: the root joined with the whole URL path, as nginx's `root`.
    mkdirSync(join(phpRoot, 'php'), { recursive: true });
    writeFileSync(join(phpRoot, 'php', 'page.php'), '<?php header("Content-Type: text/html"); echo str_repeat("<p>hello</p>", 400);\n');
    const sock = join(tmp.dir, 'php.sock');
    fpm = await startPhpFpm(tmp.dir, sock);
    config += `[[routes]]\npath = "/php"\nfastcgi = { pass = "unix:${sock}", root = "${phpRoot}" }\n`;
    // One child, which keeps serving the kept-alive connection it took: a second connection would wait unserved.
    const dir1 = join(tmp.dir, 'one');
    mkdirSync(dir1);
    const sock1 = join(dir1, 'php.sock');
    fpm1 = await startPhpFpm(dir1, sock1, { 'pm.max_children': 1 });
    config += `[[routes]]\npath = "/php1"\nfastcgi = { pass = "unix:${sock1}", root = "${join(tmp.dir, 'www1')}", keepalive = 1, max_connections = 1, connect_timeout = 1 }\n`;
    mkdirSync(join(tmp.dir, 'www1', 'php1'), { recursive: true });
    writeFileSync(join(tmp.dir, 'www1', 'php1', 'slow.php'), '<?php usleep(100000); echo "done";\n');
    writeFileSync(join(tmp.dir, 'www1', 'php1', 'slower.php'), '<?php usleep(1600000); echo "done";\n');
  }
  writeFileSync(join(tmp.dir, 'gatehouse.toml'), config);
  server = await launch(['--config', join(tmp.dir, 'gatehouse.toml')], { workers: 0 });
});

after(async () => {
  await server?.kill();
  await fpm?.stop();
  await fpm1?.stop();
  for (const up of Object.values(ups)) await up.close();
  tmp.remove();
});

test('backup upstreams: used only when every primary is down or failed', async () => {
  for (let i = 0; i < 6; i++) assert.equal((await request(server.url, '/backup-idle/x')).headers['x-upstream'], 'a');
  assert.equal(ups.b!.hits.get('/backup-idle/x'), undefined);
  const r = await request(server.url, '/backup-used/x');
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-upstream'], 'b');
});

test('backup with balance = "hash", or only backups: a config error naming the key', async () => {
  const bad = join(tmp.dir, 'bad.toml');
  writeFileSync(bad, `[[routes]]\nproxy = { upstreams = ["127.0.0.1:1", { address = "127.0.0.1:2", backup = true }], balance = "hash" }\n`);
  const r = await runCli(['--config', bad, '--check-config']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr + r.stdout, /routes\[0\]\.proxy\.upstreams\[1\]\.backup/);
});

test('buffering: past buffer_size the response goes to a temp file, the upstream is done while the client is slow, and the front stays small', async () => {
  let spooled = 0;
  assert.equal(await finishedWhileClientStalls(server.port, '/spill', ups.big!, () => (spooled = spooledBytes(server.pid))), true);
  // What the client has not taken is in the (unlinked) temp file: only buffer_size and the socket's buffers are not.
  assert.ok(spooled > 16 * 1024 * 1024, `${spooled} bytes in the temp file`);
  // Read whole later, slowly at first: every byte arrives.
  const conn = new RawConnection(server.port);
  await conn.connected;
  conn.socket.pause();
  conn.socket.write('GET /spill/big?mb=8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  await sleep(500);
  conn.socket.resume();
  await conn.waitClosed(10000);
  const text = conn.pending;
  const bodyAt = text.indexOf('\r\n\r\n') + 4;
  assert.equal(text.length - bodyAt, 8 * 1024 * 1024);
  assert.ok(text.subarray(bodyAt).every((c) => c === 0x62));
  // max_temp_file_size = 0: the upstream waits for the client past buffer_size.
  assert.equal(await finishedWhileClientStalls(server.port, '/nospill', ups.big!), false);
});

test("compression: the front's gzip/br applied to what the upstream did not compress, never twice", async () => {
  const page = '<p>hello</p>'.repeat(400);
  const r = await request(server.url, '/z/page', { headers: { 'Accept-Encoding': 'gzip' } });
  assert.equal(r.headers['content-encoding'], 'gzip');
  assert.match(String(r.headers.vary), /Accept-Encoding/);
  assert.equal(gunzipSync(r.raw).toString(), page);
  const br = await request(server.url, '/z/page', { headers: { 'Accept-Encoding': 'br' } });
  assert.equal(br.headers['content-encoding'], 'br');
  const pre = await request(server.url, '/z/gzipped', { headers: { 'Accept-Encoding': 'gzip, br' } });
  assert.equal(pre.headers['content-encoding'], 'gzip');
  assert.equal(gunzipSync(pre.raw).toString(), page);
  const plain = await request(server.url, '/z/page');
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.equal(plain.body, page);
});

test('compression of a FastCGI response (php-fpm)', { skip: hasPhpFpm() ? false : 'needs Debian php-fpm (php-fpm8.2)' }, async () => {
  const r = await request(server.url, '/php/page.php', { headers: { 'Accept-Encoding': 'gzip' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-encoding'], 'gzip');
  assert.equal(gunzipSync(r.raw).toString(), '<p>hello</p>'.repeat(400));
});

test('fastcgi max_connections: requests past it wait for a kept-alive connection instead of a php-fpm child that never comes', { skip: hasPhpFpm() ? false : 'needs Debian php-fpm (php-fpm8.2)' }, async () => {
  const started = Date.now();
  const answers = await Promise.all([1, 2, 3, 4].map(() => request(server.url, '/php1/slow.php', { timeoutMs: 4000 })));
  assert.deepEqual(answers.map((r) => `${r.status} ${r.body}`), ['200 done', '200 done', '200 done', '200 done']);
  // One after the other on the one connection.
  assert.ok(Date.now() - started >= 400, 'the requests ran one at a time');
  // A request that waits longer than connect_timeout for the connection: 504, logged as connecting.
  const [slow, waited] = await Promise.all([request(server.url, '/php1/slower.php', { timeoutMs: 4000 }), sleep(100).then(() => request(server.url, '/php1/slow.php', { timeoutMs: 4000 }))]);
  assert.equal(slow.status, 200);
  assert.equal(waited.status, 504);
  assert.match(server.output(), /GET \/php1\/slow.php: upstream unix:\S+ failed while connecting: timed out after 1 s/);
});

test('request_buffering = false: a chunked body past max_request_body is refused with 413', async () => {
  const conn = new RawConnection(server.port);
  await conn.connected;
  conn.socket.write('POST /capped/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
  for (let i = 0; i < 3; i++) conn.socket.write(`200\r\n${'x'.repeat(512)}\r\n`);
  conn.socket.write('0\r\n\r\n');
  const res = await conn.readResponse();
  conn.socket.destroy();
  assert.equal(res.status, 413, server.output().slice(-1500));
  // Within the limit, it goes up.
  const ok = await request(server.url, '/capped/y', { method: 'POST', body: 'x'.repeat(500), headers: { 'Transfer-Encoding': 'chunked' } });
  assert.equal(ok.status, 200);
});

test('request_buffering = false: a chunk that is not well formed is refused with 400 and the connection closes', async () => {
  const from = server.output().length;
  const conn = await RawConnection.open(server.port);
  conn.write('POST /capped/bad HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nhello\r\n0\r\n\r\n');
  const res = await conn.readResponse();
  await conn.waitClosed();
  assert.equal(res.status, 400, server.output().slice(from));
});

test('an upstream host name: resolved at start, then again once per resolve_ttl, not per connection', async () => {
  assert.equal((await request(server.url, '/named/x')).headers['x-upstream'], 'a');
  let calls = 0;
  const cache = new DnsCache(200, async (host) => {
    calls++;
    return [{ address: host === 'one' ? '127.0.0.1' : '::1', family: host === 'one' ? 4 : 6 }];
  });
  const looked = (host: string) => new Promise<string>((resolve, reject) => cache.lookup(host, {}, (err, address) => (err ? reject(err) : resolve(String(address)))));
  assert.equal(await looked('one'), '127.0.0.1');
  assert.equal(await looked('one'), '127.0.0.1');
  assert.equal(calls, 1);
  await sleep(250);
  await looked('one');
  assert.equal(calls, 2);
});

/** The size of the response temp files a process holds open (unlinked: only its descriptors reach them). */
function spooledBytes(pid: number): number {
  let total = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    const path = `/proc/${pid}/fd/${fd}`;
    try {
      if (readlinkSync(path).includes('gatehouse-response-')) total += statSync(path).size;
    } catch {
      // closed meanwhile
    }
  }
  return total;
}
