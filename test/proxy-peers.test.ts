/**
 * The `proxy` action in front of real servers: gunicorn (Debian's) on a
 * unix socket, nginx on TCP (its $connection and $connection_requests show
 * the kept-alive pool), a Node https upstream (certificate checked), and
 * HTTP/2 clients reaching HTTP/1.1 upstreams; plus the connect and send
 * timeouts against sockets that never accept or never read.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { connect as h2connect } from 'node:http2';
import { connect, createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS, hasCommand, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { launchConfig, type Server } from './helpers/launch.js';
import { request } from './helpers/request.js';
import { refusedAddress } from './helpers/upstreams.js';
import { WebSocket, WebSocketServer } from 'ws';

const HAVE = { gunicorn: hasCommand('gunicorn'), nginx: hasCommand('nginx'), openssl: hasCommand('openssl') };
const dir = mkdtempSync(join(tmpdir(), 'gh-proxy-peers-'));
const gunicornSock = join(dir, 'gunicorn.sock');
let server: Server;
let gunicorn: ChildProcess | null = null;
let nginx: ChildProcess | null = null;
let nginxPort = 0;
let https: HttpsServer | null = null;
let httpsPort = 0;
/** Accepts nothing past its first connection (listen backlog 0, filled). */
let backlogFull: ChildProcess | null = null;
let backlogPort = 0;
const fillers: Socket[] = [];
let wss: WebSocketServer | null = null;
/** Accepts connections and never reads from them. */
let deaf: NetServer;
let deafPort = 0;

async function freePort(): Promise<number> {
  return Number((await refusedAddress()).split(':')[1]);
}

function startNginx(): Promise<void> {
  const conf = join(dir, 'nginx.conf');
  for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(
    conf,
    `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000;
  server {
    listen 127.0.0.1:${nginxPort};
    location / { default_type text/plain; return 200 "nginx uri=$request_uri conn=$connection requests=$connection_requests host=$host xff=$http_x_forwarded_for\\n"; }
    location = /moved { return 302 http://$host/elsewhere; }
  }
}
`,
  );
  nginx = spawn('nginx', ['-p', dir, '-c', conf, '-e', join(dir, 'nginx-error.log')], { stdio: 'ignore' });
  return until(() => connectable(nginxPort), 5000, 'nginx did not start');
}

/** Polls an asynchronous check until it holds, failing the test after `ms`. */
async function until(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    assert.ok(Date.now() < end, what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function connectable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

before(async () => {
  const routes: string[] = [];
  const route = (path: string, proxy: string) => routes.push(`[[routes]]\npath = "${path}"\n[routes.proxy]\n${proxy}\n`);
  if (HAVE.gunicorn) {
    gunicorn = spawn('gunicorn', ['--bind', `unix:${gunicornSock}`, '--workers', '1', '--chdir', `${APPS}`, 'basic:echo_environ'], { stdio: 'ignore' });
    route('/gunicorn', `upstreams = ["unix:${gunicornSock}"]\npass_path = "/"`);
  }
  if (HAVE.nginx) {
    nginxPort = await freePort();
    await startNginx();
    route('/nginx', `upstreams = ["127.0.0.1:${nginxPort}"]\npass_path = "/"`);
    route('/one', `upstreams = ["127.0.0.1:${nginxPort}"]\npass_path = "/"\nmax_connections = 1`);
    route('/short-idle', `upstreams = ["127.0.0.1:${nginxPort}"]\npass_path = "/"\nkeepalive_timeout = 0.3`);
  }
  if (HAVE.openssl) {
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'up.key'), '-out', join(dir, 'up.crt'), '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    https = createHttpsServer({ key: readFileSync(join(dir, 'up.key')), cert: readFileSync(join(dir, 'up.crt')) }, (req, res) => {
      res.setHeader('Content-Type', 'text/plain');
      res.end(`tls upstream ${req.url} host=${req.headers.host}`);
    });
    await new Promise<void>((resolve) => https!.listen(0, '127.0.0.1', resolve));
    httpsPort = (https.address() as AddressInfo).port;
    route('/tls', `upstreams = ["https://127.0.0.1:${httpsPort}"]\ntls_ca = "${join(dir, 'up.crt')}"`);
    route('/tls-untrusted', `upstreams = ["https://127.0.0.1:${httpsPort}"]`);
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((resolve) => wss!.once('listening', resolve));
    wss.on('connection', (ws, req) => ws.on('message', (m) => ws.send(`${req.headers['x-forwarded-proto']}: ${m.toString()}`)));
    route('/ws', `upstreams = ["127.0.0.1:${(wss.address() as AddressInfo).port}"]`);
    route('/tls-unverified', `upstreams = ["https://127.0.0.1:${httpsPort}"]\ntls_verify = false`);
  }
  backlogFull = spawn(SYSTEM_PYTHON, ['-c', "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(120)"], { stdio: ['ignore', 'pipe', 'ignore'] });
  backlogPort = await new Promise<number>((resolve) => backlogFull!.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  for (let i = 0; i < 3; i++) {
    const s = connect(backlogPort, '127.0.0.1');
    s.on('error', () => {});
    fillers.push(s);
  }
  route('/connect-timeout', `upstreams = ["127.0.0.1:${backlogPort}"]\nconnect_timeout = 0.5`);
  deaf = createNetServer({ pauseOnConnect: true }, () => {});
  await new Promise<void>((resolve) => deaf.listen(0, '127.0.0.1', resolve));
  deafPort = (deaf.address() as AddressInfo).port;
  route('/send-timeout', `upstreams = ["127.0.0.1:${deafPort}"]\nsend_timeout = 0.5`);
  const listeners = HAVE.openssl
    ? `[[listeners]]\nbind = "127.0.0.1:0"\n[[listeners]]\nbind = "127.0.0.1:0"\ncertfile = "${join(dir, 'up.crt')}"\nkeyfile = "${join(dir, 'up.key')}"\n`
    : `[[listeners]]\nbind = "127.0.0.1:0"\n`;
  server = await launchConfig(dir, `${listeners}\n${routes.join('\n')}`, 0);
  if (HAVE.gunicorn) await until(() => connectableUnix(gunicornSock), 10000, 'gunicorn did not start');
});

function connectableUnix(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

after(async () => {
  await server?.kill();
  for (const p of [gunicorn, nginx, backlogFull]) p?.kill('SIGTERM');
  for (const s of fillers) s.destroy();
  https?.close();
  wss?.close();
  deaf?.close();
  await new Promise((r) => setTimeout(r, 200));
  rmSync(dir, { recursive: true, force: true });
});

test('gunicorn (Debian) on a unix socket behind proxy: path, query, body, Host and X-Forwarded-For reach the app', { skip: HAVE.gunicorn ? false : 'gunicorn is not installed (Debian: gunicorn)' }, async () => {
  for (let i = 0; i < 3; i++) {
    const r = await request(server.url, `/gunicorn/items/${i}?page=2`, { method: 'POST', body: `n=${i}`, headers: { Host: 'app.example', 'Content-Type': 'application/x-www-form-urlencoded' } });
    assert.equal(r.status, 200, server.output());
    const env = JSON.parse(r.body) as Record<string, string>;
    assert.equal(env.PATH_INFO, `/items/${i}`);
    assert.equal(env.QUERY_STRING, 'page=2');
    assert.equal(env.body, `n=${i}`);
    assert.equal(env.HTTP_HOST, 'app.example');
    assert.equal(env.HTTP_X_FORWARDED_FOR, '127.0.0.1');
    assert.equal(env.HTTP_X_FORWARDED_PROTO, 'http');
    assert.match(env.SERVER_SOFTWARE ?? '', /gunicorn/);
  }
});

test('nginx behind proxy: answers, redirects rewritten, and one kept-alive upstream connection serves request after request', { skip: HAVE.nginx ? false : 'nginx is not installed (Debian: nginx)' }, async () => {
  const first = await request(server.url, '/nginx/a?x=1', { headers: { Host: 'site.example' } });
  assert.equal(first.status, 200);
  assert.match(first.body, /^nginx uri=\/a\?x=1 conn=\d+ requests=\d+ host=site.example xff=127.0.0.1$/m);
  const conn = /conn=(\d+) requests=(\d+)/.exec(first.body)!;
  const second = await request(server.url, '/nginx/b');
  const conn2 = /conn=(\d+) requests=(\d+)/.exec(second.body)!;
  assert.equal(conn2[1], conn[1], 'the same upstream connection');
  assert.equal(Number(conn2[2]), Number(conn[2]) + 1);
  const moved = await request(server.url, '/nginx/moved', { headers: { Host: 'site.example' } });
  assert.equal(moved.status, 302);
  assert.equal(moved.headers.location, '/nginx/elsewhere');
});

test('max_connections = 1: concurrent requests share one upstream connection', { skip: HAVE.nginx ? false : 'nginx is not installed (Debian: nginx)' }, async () => {
  const bodies = await Promise.all([1, 2, 3, 4, 5].map((i) => request(server.url, `/one/${i}`).then((r) => r.body)));
  const conns = new Set(bodies.map((b) => /conn=(\d+)/.exec(b)![1]));
  assert.equal(conns.size, 1, bodies.join(''));
});

test('keepalive_timeout: an upstream connection idle longer is closed, the next request opens another', { skip: HAVE.nginx ? false : 'nginx is not installed (Debian: nginx)' }, async () => {
  const conn = async () => /conn=(\d+)/.exec((await request(server.url, '/short-idle/k')).body)![1];
  const first = await conn();
  assert.equal(await conn(), first, 'kept while busy');
  await new Promise((r) => setTimeout(r, 800));
  assert.notEqual(await conn(), first);
});

test('https upstream: verified against tls_ca; refused (502) when untrusted; tls_verify = false skips the check', { skip: HAVE.openssl ? false : 'openssl is not installed (Debian: openssl)' }, async () => {
  const ok = await request(server.url, '/tls/x', { headers: { Host: 'site.example' } });
  assert.equal(ok.status, 200);
  assert.equal(ok.body, 'tls upstream /tls/x host=site.example');
  const bad = await request(server.url, '/tls-untrusted/x');
  assert.equal(bad.status, 502);
  await server.waitFor(/GET \/tls-untrusted\/x: upstream https:\/\/127\.0\.0\.1:\d+ failed while connecting: .*(certificate|self.signed)/i);
  assert.equal((await request(server.url, '/tls-unverified/y')).status, 200);
});

test('HTTP/2 clients reach HTTP/1.1 upstreams (GET and a POST body)', { skip: HAVE.openssl && HAVE.nginx ? false : 'needs openssl and nginx (Debian)' }, async () => {
  // The TLS listener's line may come after the first one launch() waited for.
  const tlsAddress = (await server.waitFor(/Listening at: https:\/\/(\S+) \(/))[1]!;
  const session = h2connect(`https://${tlsAddress}`, { ca: readFileSync(join(dir, 'up.crt')) });
  const ask = (path: string, method = 'GET', body?: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const s = session.request({ ':path': path, ':method': method, ...(body ? { 'content-type': 'text/plain' } : {}) });
      let status = 0;
      let text = '';
      s.on('response', (h) => (status = Number(h[':status'])));
      s.on('data', (d: Buffer) => (text += d.toString()));
      s.on('end', () => resolve({ status, body: text }));
      s.on('error', reject);
      s.end(body);
    });
  try {
    const got = await ask('/nginx/h2?y=2');
    assert.equal(got.status, 200);
    // The Host sent up is the client's :authority.
    assert.match(got.body, /^nginx uri=\/h2\?y=2 .*host=127\.0\.0\.1 /);
    const tls = await ask('/tls/posted', 'POST', 'hello over h2');
    assert.equal(tls.status, 200);
    assert.equal(tls.body, `tls upstream /tls/posted host=${tlsAddress}`);
  } finally {
    session.close();
  }
});

test('connect timeout: an upstream that never accepts is a 504 after connect_timeout, logged as connecting', async () => {
  const started = Date.now();
  const r = await request(server.url, '/connect-timeout/x');
  assert.equal(r.status, 504);
  assert.ok(Date.now() - started < 3000);
  await server.waitFor(new RegExp(`GET /connect-timeout/x: upstream 127\\.0\\.0\\.1:${backlogPort} failed while connecting: .*\\(504\\)`));
});

test('send timeout: an upstream that stops reading the request body is a 504 after send_timeout, logged as sending', async () => {
  const body = Buffer.alloc(16 * 1024 * 1024, 'x');
  const r = await request(server.url, '/send-timeout/x', { method: 'POST', body, timeoutMs: 15000 });
  assert.equal(r.status, 504);
  await server.waitFor(/POST \/send-timeout\/x: upstream 127\.0\.0\.1:\d+ failed while sending the request: no progress for send_timeout \(0\.5 s\) \(504\)/);
});

test('WebSocket over TLS (wss) through the TLS listener and the proxy', { skip: HAVE.openssl ? false : 'openssl is not installed (Debian: openssl)' }, async () => {
  const tlsAddress = (await server.waitFor(/Listening at: https:\/\/(\S+) \(/))[1]!;
  const ws = new WebSocket(`wss://${tlsAddress}/ws`, { ca: readFileSync(join(dir, 'up.crt')) });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const reply = new Promise<string>((resolve) => ws.once('message', (m) => resolve(m.toString())));
  ws.send('over tls');
  assert.equal(await reply, 'https: over tls');
  ws.close();
});
