/**
 * The error catalogue (src/errors.ts) and the README agree: every GH_ERR_*
 * code gatehouse defines has a row in the README's "Error codes" table, with
 * the exit status it really has, and the table names no code that does not
 * exist. Every GH_ERR_* code the source raises is in the catalogue.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, GatehouseError, type ErrorCode } from '../src/errors.js';
import { ROOT } from './helpers/gatehouse.js';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const CODES = Object.keys(ErrorCodes) as ErrorCode[];

/** The README's "Error codes" section: code → its table row's exit status. */
function documented(): Map<string, number> {
  const start = README.indexOf('\n## Error codes\n');
  assert.ok(start >= 0, 'the README has no "## Error codes" section');
  const end = README.indexOf('\n## ', start + 1);
  const section = README.slice(start, end < 0 ? undefined : end);
  const rows = new Map<string, number>();
  for (const m of section.matchAll(/^\| `(GH_ERR_[A-Z0-9_]+)` \| (\d+) \|/gm)) rows.set(m[1]!, Number(m[2]));
  return rows;
}

/** Every .ts file under src/. */
function sources(dir = join(ROOT, 'src')): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : name.endsWith('.ts') ? [path] : [];
  });
}

test('the catalogue is not empty and every code is GH_ERR_ and upper case', () => {
  assert.ok(CODES.length >= 5);
  for (const code of CODES) assert.match(code, /^GH_ERR_[A-Z0-9_]+$/);
});

for (const code of CODES) {
  test(`${code} is in the README's error codes table, with its exit status`, () => {
    const rows = documented();
    assert.ok(rows.has(code), `${code} (${ErrorCodes[code]}) has no row in the README's "Error codes" table`);
    assert.equal(rows.get(code), new GatehouseError(code, 'x').exitCode, `${code}'s exit status in the README`);
  });
}

test('the README documents no code that the catalogue lacks', () => {
  for (const code of documented().keys()) assert.ok(code in ErrorCodes, `the README lists ${code}, which src/errors.ts does not define`);
  // Nor anywhere else in the README.
  for (const m of README.matchAll(/GH_ERR_[A-Z0-9_]+/g)) assert.ok(m[0] in ErrorCodes, `the README mentions ${m[0]}`);
});

test('every GH_ERR_ code in the source is in the catalogue', () => {
  for (const file of sources()) {
    for (const m of readFileSync(file, 'utf8').matchAll(/GH_ERR_[A-Z0-9_]+/g)) {
      assert.ok(m[0] in ErrorCodes, `${file.slice(ROOT.length)} uses ${m[0]}, which src/errors.ts does not define`);
    }
  }
});
