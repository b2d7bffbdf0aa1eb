/**
 * --sticky dispatch on WSGI workers (pool_apps.py:sleepy answers with the
 * worker's pid): a client whose worker is busy waits for that worker, as
 * nginx's ip_hash waits on its one upstream, and its waiting requests do not
 * hold up clients of the other worker.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { APPS } from './helpers/gatehouse.js';
import { withServer } from './helpers/launch.js';
import { request } from './helpers/request.js';
import { sleep } from './helpers/wait.js';

const APP = `${APPS}/pool_apps.py:sleepy`;

/** The pid in a sleepy answer ("PATH PID"). */
const pidOf = (body: string) => body.split(' ')[1]!;

for (const { name, threads } of [
  { name: 'sync workers', threads: 1 },
  { name: 'threaded workers', threads: 2 },
]) {
  test(`--sticky, ${name}: a client whose worker is busy waits for it; others' clients go on`, async () => {
    await withServer([APP, '--workers', '2', '--threads', String(threads), '--sticky'], async (server) => {
      const get = async (from: string, path: string) => pidOf((await request(server.url, path, { localAddress: from })).body);
      // Two source addresses served by different workers (each address always by the same one).
      const addresses = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 1}`);
      const pids = new Map<string, string>();
      for (const from of addresses) pids.set(from, await get(from, '/who'));
      for (const from of addresses) assert.equal(await get(from, '/again'), pids.get(from), `${from} stays on its worker`);
      const a = addresses[0]!;
      const b = addresses.find((from) => pids.get(from) !== pids.get(a));
      assert.ok(b !== undefined, `the addresses spread over both workers: ${JSON.stringify([...pids])}`);

      // a's worker is made busy (every thread sleeping), then a asks again and b asks.
      let sleeping = true;
      const held = Array.from({ length: threads }, () => get(a, '/sleep/1.5'));
      void Promise.all(held).then(() => (sleeping = false));
      await sleep(300);
      const waited = get(a, '/after').then((pid) => ({ pid, whileSleeping: sleeping }));
      await sleep(100);
      const other = await get(b, '/other');
      assert.equal(other, pids.get(b), "b's request goes to b's worker");
      assert.equal(sleeping, true, "b is answered while a's worker is still busy, not after a's waiting request");
      for (const pid of await Promise.all(held)) assert.equal(pid, pids.get(a));
      const after = await waited;
      assert.equal(after.pid, pids.get(a), "a's request waited for a's worker rather than going to the idle one");
      assert.equal(after.whileSleeping, false, "a's request was answered once its worker was free");
    });
  });
}
