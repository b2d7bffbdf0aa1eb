/**
 * Requests waiting for another request's origin fetch of the same key (cache
 * coalescing) are work under way for their clients: one whose client goes
 * away meanwhile (a reset, or a FIN as nginx sees it) stops waiting, is
 * logged 499 and gets nothing; the other waiters are answered from the one
 * fetch, and one that left does not fetch by itself when the lock timeout
 * passes. A real gatehouse in front of test/apps/cache_origin.py.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { launch, type Server } from './helpers/launch.js';
import { request, type SimpleResponse } from './helpers/request.js';
import { sleep } from './helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'gh-cache-waiters-'));
let gh: Server;

before(async () => {
  const config = join(dir, 'gatehouse.toml');
  writeFileSync(
    config,
    `python = "${SYSTEM_PYTHON}"
workers = 1
threads = 4
bind = ["127.0.0.1:0"]
app = "${APPS}/cache_origin.py:app"
access_log = "-"

[cache]
size = "4m"
lock_timeout = 2
`,
  );
  gh = await launch(['--config', config], { workers: 1 });
});

after(async () => {
  await gh?.kill();
  rmSync(dir, { recursive: true, force: true });
});

async function calls(path: string): Promise<number> {
  const r = await request(gh.url, `/__calls?path=${encodeURIComponent(path)}`);
  return (JSON.parse(r.body) as { calls: number }).calls;
}

/** Starts the one origin fetch of `target` (the origin sleeps): resolves once the origin has it, so later requests wait. */
async function firstFetch(target: string, path: string): Promise<{ answer: Promise<SimpleResponse> }> {
  const answer = request(gh.url, target, { timeoutMs: 10_000 });
  for (let i = 0; i < 100 && (await calls(path)) === 0; i++) await sleep(20);
  assert.equal(await calls(path), 1);
  return { answer };
}

/**
 * A raw client of `target` (the same cache key as request()'s, with
 * User-Agent `agent`): it half-closes right after its request (`fin`), or
 * resets its connection a moment later (`reset`). `closed` resolves with what
 * it received once the connection is closed.
 */
function leavingClient(target: string, agent: string, how: 'fin' | 'reset'): { closed: Promise<string> } {
  const socket = connect({ port: gh.port, host: '127.0.0.1' });
  let got = '';
  socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
  socket.on('error', () => {});
  const head = `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${gh.port}\r\nUser-Agent: ${agent}\r\n\r\n`;
  if (how === 'fin') socket.end(head);
  else {
    socket.write(head);
    setTimeout(() => socket.resetAndDestroy(), 200);
  }
  return { closed: new Promise((resolve) => socket.once('close', () => resolve(got))) };
}

function accessLine(target: string, agent: string): RegExp {
  return new RegExp(`"GET ${target.replace(/[?.]/g, '\\$&')} HTTP/1\\.1" (\\d+) .*"${agent}"`);
}

test('a waiter whose client half-closes or resets: 499 and nothing sent, while the others get the one fetch', async () => {
  const path = '/coalesced';
  const target = `${path}?cc=max-age%3D60&sleep=1`;
  const holder = (await firstFetch(target, path)).answer;
  let holderDone = false;
  void holder.then(() => (holderDone = true));
  const live = [1, 2].map(() => request(gh.url, target, { headers: { 'user-agent': 'live-waiter' } }));
  const fin = leavingClient(target, 'fin-waiter', 'fin');
  const reset = leavingClient(target, 'reset-waiter', 'reset');
  assert.equal(await fin.closed, '', 'nothing sent to the client that half-closed');
  assert.equal(holderDone, false, 'its wait stopped when the FIN came, not when the fetch ended');
  await reset.closed;
  for (const answer of [await holder, ...(await Promise.all(live))]) {
    assert.equal(answer.status, 200);
    assert.match(answer.body, /^GET \/coalesced call 1 /);
  }
  assert.equal((await gh.waitFor(accessLine(target, 'fin-waiter'), 3000))[1], '499');
  assert.equal((await gh.waitFor(accessLine(target, 'reset-waiter'), 3000))[1], '499');
  assert.equal(await calls(path), 1);
});

test('waiters that left do not fetch by themselves when the lock timeout passes', async () => {
  const path = '/left-behind';
  // The origin takes longer than lock_timeout (2 s).
  const target = `${path}?cc=max-age%3D60&sleep=3`;
  const holder = (await firstFetch(target, path)).answer;
  const fin = leavingClient(target, 'fin-leaver', 'fin');
  const reset = leavingClient(target, 'reset-leaver', 'reset');
  await Promise.all([fin.closed, reset.closed]);
  assert.equal((await holder).status, 200);
  assert.equal((await gh.waitFor(accessLine(target, 'fin-leaver'), 3000))[1], '499');
  assert.equal((await gh.waitFor(accessLine(target, 'reset-leaver'), 3000))[1], '499');
  assert.equal(await calls(path), 1);
});
