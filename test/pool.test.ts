import { test } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, startGatehouse } from './helpers/gatehouse.js';

test('requests never stay queued behind a long-running one while another worker is free', async () => {
  const gh = await startGatehouse([`${APPS}/pool_apps.py:sleepy`, '--workers', '2']);
  try {
    const order: string[] = [];
    const slow = fetch(`${gh.url}/sleep/3`).then(async (r) => {
      order.push('slow');
      return r.text();
    });
    // Sent in the same tick: some of these are first queued on the slow request's worker.
    const fast = Array.from({ length: 30 }, (_, i) =>
      fetch(`${gh.url}/fast/${i}`).then(async (r) => {
        assert.equal(r.status, 200);
        order.push('fast');
        return r.text();
      }),
    );
    const fastBodies = await Promise.all(fast);
    assert.equal(order.filter((o) => o === 'slow').length, 0, 'all fast requests finished before the slow one');
    const slowPid = (await slow).split(' ')[1];
    assert.ok(fastBodies.every((b) => b.split(' ')[1] !== slowPid), 'no fast request ran on the busy worker after it');
  } finally {
    await gh.stop();
  }
});
