/**
 * What the cache test files share (test/cache-hits.test.ts, cache-stale,
 * cache-rules; test/cache-shared.test.ts and test/memcached-pages.test.ts
 * use the origin and the client helpers): the origin app of our own
 * (test/apps/cache_origin.py), which counts its calls and answers with the
 * Cache-Control, Vary, ETag, Set-Cookie... it is asked for; a gatehouse with
 * --cache in front of it (`server`) and, for the files that ask for it, a
 * second one running a config file's per-route rules (`routed`), started by
 * serveCache() before a file's tests and stopped after them.
 */
import { after, before } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS, SYSTEM_PYTHON } from './gatehouse.js';
import { launch, type Server } from './launch.js';
import { request, type SimpleResponse } from './request.js';

export const APP = `${APPS}/cache_origin.py:app`;

/** A temp dir for the config files (set before the tests run). */
export let dir = '';
export let server: Server;
export let routed: Server;

/** A path with the origin's answer described by its query. */
export function at(path: string, q: Record<string, string> = {}): string {
  const query = new URLSearchParams(q).toString();
  return query === '' ? path : `${path}?${query}`;
}

export async function calls(s: Server, path: string): Promise<{ calls: number; not_modified: number }> {
  const r = await request(s.url, at('/__calls', { path }));
  return JSON.parse(r.body) as { calls: number; not_modified: number };
}

export function get(s: Server, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<SimpleResponse> {
  return request(s.url, path, { headers, method });
}

export function status(r: SimpleResponse): string {
  return String(r.headers['cache-status'] ?? '');
}

/** The servers: `server` always, `routed` when asked for, and the dir with their config file. */
async function startServers(withRouted: boolean): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), 'gh-cache-'));
  server = await launch([APP, '--python', SYSTEM_PYTHON, '--cache', '16m', '--threads', '4', '--access-log', '-']);
  const config = join(dir, 'gatehouse.toml');
  writeFileSync(
    config,
    `
python = "${SYSTEM_PYTHON}"
workers = 1
threads = 4
bind = ["127.0.0.1:0"]
app = "${APP}"

[cache]
size = "4m"
max_object_size = "1k"
lock_timeout = 1
default_ttl = 60
bypass_cookies = ["session"]
purge_allow = ["10.0.0.0/8"]

[[routes]]
path = "/"
app = "main"

[[routes]]
path = "/cookies"
app = "main"
cache = { store_set_cookie = true }

[[routes]]
path = "/nokey"
app = "main"
cache = { key = "$host$uri" }

[[routes]]
path = "/off"
app = "main"
cache = false
`,
  );
  if (withRouted) routed = await launch(['--config', config], { workers: 1 });
}

/** Starts the servers before the tests of the file that calls it (`routed` too when asked for); stops them after them. */
export function serveCache(servers: { routed?: boolean } = {}): void {
  before(() => startServers(servers.routed === true));
  after(async () => {
    await server?.kill();
    await routed?.kill();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
}
