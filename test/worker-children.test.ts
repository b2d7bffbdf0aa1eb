/**
 * A worker whose app started a process of its own at import (a forked
 * child holding all the worker's descriptors, or a subprocess holding its
 * stdout and stderr) is still known to be gone when it dies: its
 * replacement serves the next requests at once, where they used to wait
 * for --timeout on a dead worker while that process lived
 * (src/pool/child-exit.ts).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS } from './helpers/gatehouse.js';
import { withServer } from './helpers/launch.js';
import { request } from './helpers/request.js';

const dir = mkdtempSync(join(tmpdir(), 'gh-children-'));
const pidsFile = join(dir, 'pids');

after(() => {
  let pids: string[] = [];
  try {
    pids = readFileSync(pidsFile, 'utf8').split('\n').filter(Boolean);
  } catch {
    // no app process started one
  }
  for (const pid of pids) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

for (const kind of ['fork', 'subprocess']) {
  test(`a worker that started a process at import (${kind}) and is killed: its death is seen, and its replacement serves`, async () => {
    const env = { ...process.env, GH_TEST_CHILD: kind, GH_TEST_CHILD_PIDS: pidsFile };
    await withServer([`${APPS}/children_apps.py:app`, '--workers', '1', '--timeout', '30'], async (server) => {
      const first = (await request(server.url, '/')).body;
      process.kill(Number(first), 'SIGKILL');
      // Its death is seen within a second, while the process it started lives on.
      await server.waitFor(new RegExp(`Worker \\(pid:${first}\\) died: signal SIGKILL`), 5000);
      assert.match(server.output(), new RegExp(`Worker \\(pid:${first}\\) exited; a process it started still holds its pipes`));
      // Well within --timeout: a request sent to the dead worker would wait 30 s for its 504.
      const next = await request(server.url, '/', { timeoutMs: 8000 });
      assert.equal(next.status, 200);
      assert.notEqual(next.body, first, 'answered by a new worker');
    }, { env });
  });
}
