/**
 * What the supervisor test files share (test/supervisor-recycling.test.ts,
 * supervisor-reload, supervisor-signals): the apps of
 * test/apps/supervisor_apps.py, a temp dir per server (passed as
 * --pythonpath or --chdir, so workerPidsFor(dir) finds exactly that test's
 * Python workers), reading the versioned app's answers, and waiting for the
 * server's log lines and for a load run to end.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS } from './gatehouse.js';
import { countMatches, type Server } from './launch.js';
import type { LoadRun } from './load.js';
import { waitUntil } from './wait.js';

export const SUP = `${APPS}/supervisor_apps.py`;
export const VERSIONED = `${SUP}:versioned`;

export function tempDir(tag: string): string {
  return mkdtempSync(join(tmpdir(), `gh-sup-${tag}-`));
}

/** `version=V pid=N` → { version, pid }. */
export function parseAnswer(body: string): { version: string; pid: number } {
  const m = /^version=(\S+) pid=(\d+)$/.exec(body);
  assert.ok(m, `unexpected body ${JSON.stringify(body)}`);
  return { version: m[1]!, pid: Number(m[2]) };
}

/** Resolves once `count(output)` reaches `n`; returns performance.now() at that moment, or throws after `ms`. */
export async function waitCount(gh: Server, pattern: RegExp, n: number, ms: number): Promise<number> {
  const ok = await waitUntil(() => countMatches(gh.output(), pattern) >= n, ms);
  assert.ok(ok, `expected ${n} × ${pattern} within ${ms} ms, got ${countMatches(gh.output(), pattern)}; output:\n${gh.output()}`);
  return performance.now();
}

export async function stopLoad(load: LoadRun | null): Promise<void> {
  if (load === null) return;
  load.stop();
  await load.done;
}
