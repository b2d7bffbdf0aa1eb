/** SentRequests (src/pool/sent-requests.ts): a worker's requests in the order sent, found and removed by id in O(1). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SentRequests } from '../src/pool/sent-requests.js';

test('requests keep the order sent; any one leaves by id; the oldest is known', () => {
  const sent = new SentRequests<string>();
  for (let id = 1; id <= 5; id++) sent.add(id, `r${id}`);
  assert.equal(sent.length, 5);
  assert.equal(sent.get(3), 'r3');
  assert.equal(sent.delete(3), false);
  assert.equal(sent.delete(3), null);
  assert.equal(sent.get(3), undefined);
  assert.equal(sent.first(), 'r1');
  assert.equal(sent.delete(1), true);
  assert.equal(sent.first(), 'r2');
  assert.deepEqual([...sent], ['r2', 'r4', 'r5']);
  assert.equal(sent.delete(5), false);
  assert.equal(sent.delete(2), true);
  assert.equal(sent.delete(4), true);
  assert.equal(sent.length, 0);
  assert.equal(sent.first(), undefined);
  sent.add(9, 'r9');
  assert.deepEqual([...sent], ['r9']);
});

test('thousands leaving in a scattered order: lookups and the order of the rest hold through compaction', () => {
  const sent = new SentRequests<number>();
  const n = 5000;
  for (let id = 1; id <= n; id++) sent.add(id, id);
  const live = new Set(Array.from({ length: n }, (_, i) => i + 1));
  // Every third, then the even ones from the end: holes all over, the oldest (1) never among them.
  for (let id = 3; id <= n; id += 3) {
    assert.equal(sent.delete(id), false);
    live.delete(id);
  }
  for (let id = n; id >= 2; id -= 2) if (live.delete(id)) assert.equal(sent.delete(id), false);
  assert.equal(sent.length, live.size);
  assert.deepEqual([...sent], [...live].sort((a, b) => a - b));
  for (const id of live) assert.equal(sent.get(id), id);
  assert.equal(sent.first(), Math.min(...live));
  sent.add(n + 1, n + 1);
  assert.equal([...sent].at(-1), n + 1);
  assert.equal(sent.delete(Math.min(...live)), true);
});

test('iteration is over a copy; takeAll empties it, oldest first', () => {
  const sent = new SentRequests<string>();
  sent.add(7, 'a');
  sent.add(8, 'b');
  sent.add(9, 'c');
  for (const x of sent) if (x === 'a') sent.delete(8);
  assert.deepEqual(sent.takeAll(), ['a', 'c']);
  assert.equal(sent.length, 0);
  assert.equal(sent.get(7), undefined);
  assert.deepEqual([...sent], []);
});

test('ids that wrap past 2^32 - 1 are still found, in the order sent', () => {
  const sent = new SentRequests<string>();
  const ids = [0xfffffffd, 0xfffffffe, 0xffffffff, 1, 2, 3];
  for (const id of ids) sent.add(id, `r${id}`);
  for (const id of ids) assert.equal(sent.get(id), `r${id}`);
  assert.equal(sent.get(4), undefined);
  assert.equal(sent.get(0xfffffffc), undefined);
  assert.equal(sent.delete(1), false);
  assert.equal(sent.delete(0xfffffffd), true);
  assert.equal(sent.get(1), undefined);
  assert.equal(sent.get(0xffffffff), 'r4294967295');
  assert.equal(sent.get(3), 'r3');
  assert.deepEqual([...sent], ['r4294967294', 'r4294967295', 'r2', 'r3']);
});
