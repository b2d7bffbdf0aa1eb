/**
 * The memory store's key index (src/cache/key-index.ts) against a Map:
 * keys found, added, used and removed in any order, with hashes that
 * collide (the table's probing and its deletion that moves keys back), in
 * the same use order as a Map that takes a used key out and puts it back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KeyIndex } from '../src/cache/key-index.js';

type Op = { kind: 'put' | 'use' | 'remove' | 'evict'; key: number };

const op: fc.Arbitrary<Op> = fc.record({ kind: fc.constantFrom('put', 'put', 'use', 'remove', 'evict'), key: fc.integer({ min: 0, max: 150 }) });

test('the key index finds, orders and drops keys as a Map does, hashes colliding', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 600 }), fc.integer({ min: 0, max: 4 }), (ops, hashBits) => {
      // Few hash values: many keys share one.
      const hash = (key: string) => Number(key.slice(1)) & ((1 << hashBits) - 1);
      const names: string[] = [];
      const index = new KeyIndex((node, key) => names[node] === key);
      const model = new Map<string, number>();
      const find = (key: string) => index.find(key, hash(key));
      for (const { kind, key: k } of ops) {
        const key = `k${k}`;
        const node = find(key);
        assert.equal(node >= 0, model.has(key), `${kind} ${key}: found as the Map has it`);
        if (kind === 'put' && node < 0) {
          const n = index.add(hash(key), k);
          names[n] = key;
          model.set(key, k);
        } else if (kind === 'use' && node >= 0) {
          index.use(node);
          model.delete(key);
          model.set(key, k);
        } else if (kind === 'remove' && node >= 0) {
          index.remove(node);
          model.delete(key);
        } else if (kind === 'evict' && model.size > 0) {
          const oldest = index.oldest;
          const [first] = model.keys();
          assert.equal(names[oldest], first, 'the least recently used');
          index.remove(oldest);
          model.delete(first!);
        }
        assert.equal(index.size, model.size);
      }
      for (const [key, value] of model) assert.equal(index.value(find(key)), value);
      const order: string[] = [];
      while (index.size > 0) {
        order.push(names[index.oldest]!);
        index.remove(index.oldest);
      }
      assert.deepEqual(order, [...model.keys()], 'the whole use order');
      for (const key of model.keys()) assert.equal(find(key), -1);
    }),
    { numRuns: 300 },
  );
});

test('the key index: cleared, it holds nothing, gives back what its arrays grew to, and takes keys again', () => {
  const names: string[] = [];
  const index = new KeyIndex((node, key) => names[node] === key);
  const first = index.room;
  for (let i = 0; i < 1000; i++) names[index.add(i, i)] = `k${i}`;
  assert.ok(index.room >= 1000);
  index.clear();
  assert.equal(index.room, first);
  assert.equal(index.size, 0);
  assert.equal(index.oldest, -1);
  assert.equal(index.find('k5', 5), -1);
  names[index.add(5, 5)] = 'k5';
  assert.equal(index.value(index.find('k5', 5)), 5);
});
