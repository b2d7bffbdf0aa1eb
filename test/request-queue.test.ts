/**
 * The pool's waiting requests (src/pool/waiting-requests.ts over
 * request-queue.ts): one FIFO for requests without an affinity, one per slot
 * for a sticky app's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Exchange } from '../src/pool/exchange.js';
import { RequestQueue } from '../src/pool/request-queue.js';
import { WaitingRequests } from '../src/pool/waiting-requests.js';

/** Stand-ins for exchanges: the queues only read these fields. */
interface Fake {
  name: string;
  affinity?: number;
  queuedAt: number;
}
let clock = 0;
const x = (name: string, affinity?: number) => ({ name, ...(affinity === undefined ? {} : { affinity }), queuedAt: ++clock }) as Fake as unknown as Exchange;
const names = (xs: readonly Exchange[]) => xs.map((e) => (e as unknown as Fake).name);
const drained = (q: RequestQueue) => names(q.takeAll());

test('RequestQueue: oldest first, a moving head, requests put back in front in their order, one removed', () => {
  const q = new RequestQueue();
  for (const n of ['a', 'b', 'c', 'd']) q.push(x(n));
  assert.equal(names([q.shift()!]).join(), 'a');
  const [b] = [q.peek()!];
  q.unshift([x('r1'), x('r2')]);
  assert.equal(q.remove(b), true);
  assert.equal(q.remove(b), false);
  assert.deepEqual(drained(q), ['r1', 'r2', 'c', 'd']);
  assert.equal(q.length, 0);
});

test('WaitingRequests: a sticky request waits in its slot\'s queue, the others in the common one', () => {
  const w = new WaitingRequests(2);
  const all = [x('plain'), x('s0', 4), x('s1', 7), x('s0-again', 10)];
  for (const e of all) w.push(e);
  assert.equal(w.length, 4);
  assert.equal(w.queueOf(all[0]!), w.queues[0]);
  assert.equal(w.queueOf(all[1]!), w.queueOf(all[3]!), 'affinities 4 and 10 share slot 0');
  assert.notEqual(w.queueOf(all[1]!), w.queueOf(all[2]!));
  assert.deepEqual(w.queues.filter((q) => q.length > 0).map(drained), [['plain'], ['s0', 's0-again'], ['s1']], 'the common queue first, then the slots');
  assert.equal(w.length, 0);
  assert.deepEqual(w.queues.filter((q) => q.length > 0), []);
});

test('WaitingRequests: requests given back go in front of their own queues; remove() finds a request in its slot', () => {
  const w = new WaitingRequests(2);
  const later = [x('a1', 1), x('b0', 0)];
  for (const e of later) w.push(e);
  const back = [x('back-a1', 3), x('back-b0', 2), x('back-a2', 5)];
  w.unshift(back);
  assert.equal(w.remove(later[1]!), true);
  assert.deepEqual(w.queues.filter((q) => q.length > 0).map(drained), [['back-b0'], ['back-a1', 'back-a2', 'a1']]);
});

test('WaitingRequests: takeAll() and a new number of slots keep the requests, oldest first', () => {
  const w = new WaitingRequests(3);
  const all = [x('one', 0), x('two'), x('three', 1), x('four', 2), x('five', 3)];
  for (const e of all) w.push(e);
  w.setSlots(2);
  assert.equal(w.length, 5);
  assert.deepEqual(w.queues.filter((q) => q.length > 0).map((q) => names([q.peek()!])[0]), ['two', 'one', 'three'], 'affinities 0, 2 in slot 0; 1, 3 in slot 1');
  assert.deepEqual(names(w.takeAll()), ['one', 'two', 'three', 'four', 'five']);
});
