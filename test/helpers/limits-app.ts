/**
 * What the limits test files share (test/limits-timeouts.test.ts,
 * limits-sizes): test/apps/limits_apps.py, whose answers say what it saw,
 * and one gatehouse with small limits set by flags (header, body and
 * keep-alive timeouts of 1 s, max_header_size 2k), started by
 * serveLimitsApp() before a file's tests and stopped after them.
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS } from './gatehouse.js';
import { launch, type Server } from './launch.js';
import type { RawResponse } from './raw-connection.js';

export const APP = `${APPS}/limits_apps.py:app`;

export interface Answer {
  path: string;
  body_length: number;
  served: number;
}

export function answer(res: RawResponse): Answer {
  assert.equal(res.status, 200, `expected 200, got ${res.status}: ${res.body.toString()}`);
  return JSON.parse(res.body.toString()) as Answer;
}

export const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: test\r\n\r\n`;

export let gh: Server;
/** The server's TMPDIR, where spilled request bodies go. */
export let bodyDir = '';

/** Starts the server before the tests of the file that calls it; stops it after them. */
export function serveLimitsApp(): void {
  before(async () => {
    bodyDir = mkdtempSync(join(tmpdir(), 'gh-limits-body-'));
    gh = await launch(
      [APP, '--header-timeout', '1', '--body-timeout', '1', '--keepalive-timeout', '1', '--max-header-size', '2k'],
      { env: { TMPDIR: bodyDir } },
    );
  });

  after(async () => {
    await gh?.kill();
    rmSync(bodyDir, { recursive: true, force: true });
  });
}
