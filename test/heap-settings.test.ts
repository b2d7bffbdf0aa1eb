/**
 * src/heap-settings.ts, as V8 reports its work (`--trace-gc-nvp`): a node
 * that has evaluated it scavenges on its main thread alone, and a flag given
 * on node's command line rules instead.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './helpers/gatehouse.js';

const SETTINGS = pathToFileURL(join(ROOT, 'dist', 'src', 'heap-settings.js')).href;

/** Scavenges of a node that allocates young garbage (some of it surviving), and how many had V8's helper threads working. */
function scavenges(nodeFlags: string[], withSettings: boolean): { all: number; helped: number } {
  const probe = `${withSettings ? `await import(${JSON.stringify(SETTINGS)});` : ''}
let keep = [];
for (let i = 0; i < 2e6; i++) {
  keep.push({ a: i, b: [i, i + 1], c: 'x' + i });
  if (keep.length > 200000) keep = [];
}`;
  const r = spawnSync(process.execPath, ['--trace-gc-nvp', '--max-semi-space-size=4', ...nodeFlags, '--input-type=module', '-e', probe], { encoding: 'latin1' });
  assert.equal(r.status, 0, r.stderr);
  const helpers = [...r.stdout.matchAll(/background\.scavenge\.parallel=([\d.]+)/g)].map((m) => Number(m[1]));
  return { all: helpers.length, helped: helpers.filter((ms) => ms > 0).length };
}

test('the front scavenges without helper threads unless node is told otherwise', (t) => {
  const plain = scavenges([], false);
  if (availableParallelism() < 2 || plain.helped === 0) return t.skip('V8 scavenges on one thread here anyway');
  const set = scavenges([], true);
  assert.ok(set.all > 10, `the probe made garbage enough: ${set.all} scavenges`);
  assert.equal(set.helped, 0, `${set.helped} of ${set.all} scavenges had helper threads`);
  const told = scavenges(['--parallel-scavenge'], true);
  assert.ok(told.helped > 0, `--parallel-scavenge on node's command line rules: ${told.helped} of ${told.all} scavenges helped`);
});
