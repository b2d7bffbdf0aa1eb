/** The pool's request queue (src/pool/request-queue.ts): FIFO, and sweep() for sticky requests. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Exchange } from '../src/pool/exchange.js';
import { RequestQueue } from '../src/pool/request-queue.js';

/** Stand-ins for exchanges: the queue only keeps and compares them. */
const items = (n: number) => Array.from({ length: n }, (_, i) => ({ id: i }) as unknown as Exchange);
const ids = (q: RequestQueue) => q.takeAll().map((x) => (x as unknown as { id: number }).id);

for (const { name, taken, budget, left } of [
  { name: 'takes those placed, keeps the rest in order', taken: [1, 3], budget: 99, left: [0, 2, 4, 5] },
  { name: 'stops when more() says so, leaving the rest untouched', taken: [0, 1, 4], budget: 2, left: [2, 3, 4, 5] },
  { name: 'takes nothing', taken: [], budget: 99, left: [0, 1, 2, 3, 4, 5] },
  { name: 'takes everything', taken: [0, 1, 2, 3, 4, 5], budget: 99, left: [] },
]) {
  test(`RequestQueue.sweep ${name}`, () => {
    const q = new RequestQueue();
    for (const x of items(7)) q.push(x);
    q.shift(); // a moving head: the sweep starts from it
    let placed = 0;
    q.sweep(
      (x) => {
        const take = taken.includes((x as unknown as { id: number }).id - 1);
        if (take) placed++;
        return take;
      },
      () => placed < budget,
    );
    assert.deepEqual(ids(q).map((id) => id - 1), left);
  });
}

test('RequestQueue.sweep leaves a queue that still shifts and pushes in order', () => {
  const q = new RequestQueue();
  const [a, b, c, d] = items(4) as [Exchange, Exchange, Exchange, Exchange];
  q.push(a);
  q.push(b);
  q.push(c);
  q.sweep((x) => x === b, () => true);
  q.push(d);
  assert.equal(q.length, 3);
  assert.equal(q.shift(), a);
  assert.equal(q.shift(), c);
  assert.equal(q.shift(), d);
  assert.equal(q.length, 0);
});
