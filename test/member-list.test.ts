/** MemberList (src/http/member-list.ts): a Set's add, delete, size and iteration, without a hash table. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemberList } from '../src/http/member-list.js';

test('members come and go in any order; each is held once; iteration survives removal', () => {
  const list = new MemberList<{ n: number }>();
  const items = Array.from({ length: 6 }, (_, n) => ({ n }));
  for (const x of items) list.add(x);
  list.add(items[2]!);
  assert.equal(list.size, 6);
  assert.equal(list.delete(items[0]!), true);
  assert.equal(list.delete(items[0]!), false);
  assert.equal(list.delete({ n: 99 }), false);
  assert.equal(list.delete(items[5]!), true);
  assert.deepEqual([...list].map((x) => x.n).sort(), [1, 2, 3, 4]);
  for (const x of list) list.delete(x);
  assert.equal(list.size, 0);
  list.add(items[3]!);
  assert.deepEqual([...list], [items[3]]);
});

test('one object in two lists keeps its place in each', () => {
  const a = new MemberList<object>();
  const b = new MemberList<object>();
  const x = {};
  const y = {};
  a.add(y);
  a.add(x);
  b.add(x);
  assert.equal(b.delete(x), true);
  assert.equal(a.size, 2);
  assert.equal(a.delete(x), true);
  assert.deepEqual([...a], [y]);
});
