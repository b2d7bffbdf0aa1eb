/**
 * What the `proxy` action's test files share (test/proxy-requests.test.ts,
 * proxy-upstreams): scripted upstreams (test/helpers/upstreams.ts: echoing
 * ones, a malformed one, a silent one, a refused address, a unix socket) and
 * a WebSocket server, and one gatehouse with a route per test, so that each
 * test's upstream counters stay its own; started by serveProxySite() before
 * a file's tests and stopped after them. Real HTTP both sides, on loopback.
 */
import { after, before } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { launch, type Server } from './launch.js';
import { refusedAddress, startRawUpstream, startStaleUpstream, startUpstream, type Echo, type Upstream } from './upstreams.js';

/** The site's temp dir and its access log (set before the tests run). */
export let dir = '';
export let accessLog = '';
export let server: Server;
export const ups: Record<string, Upstream> = {};
const raws: Array<{ close(): Promise<void> }> = [];
export let malformed = '';
export let silent = '';
export let refused = '';
export let stale: Awaited<ReturnType<typeof startStaleUpstream>>;
/** A stale upstream that the test then stops listening, before a second one that stays. */
export let dying: Awaited<ReturnType<typeof startStaleUpstream>>;
let wss: WebSocketServer;
let wsPort = 0;

/** The upstreams, the WebSocket server and gatehouse, its config file routing to each. */
async function startSite(): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), 'gh-proxy-'));
  accessLog = join(dir, 'access.log');
  for (const name of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'k1', 'k2']) ups[name] = await startUpstream(name);
  ups.unix = await startUpstream('unix', join(dir, 'up.sock'));
  const bad = await startRawUpstream('HTTP/1.1 abc Broken\r\nContent-Length: 2\r\n\r\nno');
  const quiet = await startRawUpstream(null);
  stale = await startStaleUpstream();
  dying = await startStaleUpstream();
  raws.push(bad, quiet, stale, dying);
  malformed = bad.address;
  silent = quiet.address;
  refused = await refusedAddress();
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => wss.once('listening', resolve));
  wsPort = (wss.address() as { port: number }).port;
  wss.on('connection', (ws, req) => {
    ws.send(`hello ${req.url} xff=${req.headers['x-forwarded-for']}`);
    ws.on('message', (m) => ws.send(`echo: ${m.toString()}`));
  });
  const route = (path: string, proxy: string) => `[[routes]]\npath = "${path}"\n[routes.proxy]\n${proxy}\n`;
  const a = ups.a!.address;
  const b = ups.b!.address;
  writeFileSync(
    join(dir, 'gatehouse.toml'),
    `access_log = "${accessLog}"
[[listeners]]
bind = "127.0.0.1:0"
${route('/echo', `upstreams = ["${a}"]\npass_path = "/inner/"\nrequest_headers = { X-Added = "yes", X-Drop-Me = "" }\nresponse_headers = { X-Served-By = "gatehouse", X-Upstream-Hidden = "" }\nread_timeout = 1`)}
${route('/asis', `upstreams = ["${a}"]`)}
${route('/host', `upstreams = ["${a}"]\nhost = "backend.internal"`)}
${route('/rr', `upstreams = [{ address = "${a}", weight = 2 }, "${b}"]`)}
${route('/lc', `upstreams = ["${ups.c!.address}", "${ups.d!.address}"]\nbalance = "least_conn"`)}
${route('/hash', `upstreams = ["${a}", "${b}", "${ups.c!.address}"]\nbalance = "hash"\nhash_key = "header:X-User"`)}
${route('/cookiehash', `upstreams = ["${a}", "${b}", "${ups.c!.address}"]\nbalance = "hash"\nhash_key = "cookie:sid"`)}
${route('/retry', `upstreams = ["${refused}", "${ups.e!.address}"]`)}
${route('/retry503', `upstreams = [{ address = "${ups.f!.address}", max_fails = 0 }, { address = "${ups.g!.address}", max_fails = 0 }]`)}
${route('/once503', `upstreams = ["${ups.f!.address}"]`)}
${route('/tries1', `upstreams = ["${refused}", "${ups.e!.address}"]\ntries = 1`)}
${route('/tries-time', `upstreams = [{ address = "${ups.f!.address}", max_fails = 0 }, { address = "${ups.g!.address}", max_fails = 0 }]\ntries_timeout = 0.2`)}
${route('/failover', `upstreams = ["${ups.k1!.address}", "${ups.k2!.address}"]`)}
${route('/passive', `upstreams = [{ address = "${malformed}", max_fails = 1, fail_timeout = 30 }, "${b}"]`)}
${route('/refused', `upstreams = ["${refused}"]`)}
${route('/stale', `upstreams = ["${stale.address}"]`)}
${route('/stale-dying', `upstreams = ["${dying.address}", "${ups.b!.address}"]`)}
${route('/silent', `upstreams = ["${silent}"]\nread_timeout = 0.5`)}
${route('/malformed', `upstreams = ["${malformed}"]`)}
${route('/buffered', `upstreams = ["${ups.h!.address}"]\nbuffer_size = "64m"`)}
${route('/unbuffered', `upstreams = ["${ups.h!.address}"]\nbuffering = false`)}
${route('/streamed', `upstreams = ["${a}"]\nrequest_buffering = false`)}
${route('/unix', `upstreams = ["unix:${join(dir, 'up.sock')}"]\npass_path = "/"`)}
${route('/unix-missing', `upstreams = ["unix:${join(dir, 'missing.sock')}"]`)}
${route('/unix-refused', `upstreams = ["unix:${join(dir, 'not-a-socket')}"]`)}
${route('/health', `upstreams = ["${ups.c!.address}", "${ups.d!.address}"]\nhealth_check = { interval = 0.2, path = "/health", timeout = 0.5 }`)}
${route('/ws', `upstreams = ["127.0.0.1:${wsPort}"]\npass_path = "/socket"`)}
[[routes]]
path = "/small"
max_request_body = "1k"
proxy = { upstreams = ["${a}"] }
[[routes]]
path = "/plain"
return = { status = 200, body = "plain route" }
`,
  );
  server = await launch(['--config', join(dir, 'gatehouse.toml')], { workers: 0 });
}

/** Starts the site before the tests of the file that calls it; stops it and removes its files after them. */
export function serveProxySite(): void {
  before(startSite);
  after(async () => {
    await server?.kill();
    for (const up of Object.values(ups)) await up.close();
    for (const r of raws) await r.close();
    wss?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
}

export const json = (body: string) => JSON.parse(body) as Echo;
