/**
 * What the fast path's end-to-end test files share
 * (test/fast-path-bodies.test.ts, fast-path-connections): a real gatehouse
 * serving static files (a small text file, a stylesheet, a 60 KiB file) next
 * to an app that echoes its environ (basic.py:echo_environ), with short
 * header and keep-alive timeouts and the access log on stdout, started by
 * serveFastPathSite() before a file's tests and stopped after them; and the
 * raw client the tests speak to it with.
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS } from './gatehouse.js';
import { launch, type Server } from './launch.js';
import { RawConnection, type RawResponse } from './raw-connection.js';

export const TEXT = 'a small static file\n';
export const CSS = Array.from({ length: 200 }, (_, i) => `.rule-${i} { margin: ${i}px; }\n`).join('');
export const BIG = Buffer.alloc(60 * 1024, 'x');
export let dir = '';
export let gh: Server;

/** Writes the files and starts the server before the tests of the file that calls it; stops it and removes the files after them. */
export function serveFastPathSite(): void {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gh-fast-path-'));
    writeFileSync(join(dir, 'a.txt'), TEXT);
    writeFileSync(join(dir, 'big.bin'), BIG);
    writeFileSync(join(dir, 'site.css'), CSS);
    gh = await launch([
      `${APPS}/basic.py:echo_environ`,
      '--static',
      `/static=${dir}`,
      '--header-timeout',
      '2',
      '--keepalive-timeout',
      '1',
      '--access-log',
      '-',
      '--forwarded-allow-ips',
      '127.0.0.1',
    ]);
  });

  after(async () => {
    await gh?.kill();
    rmSync(dir, { recursive: true, force: true });
  });
}

export const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: test\r\n${extra}\r\n`;

/** What the app saw as the path; the body of a static answer. */
export function served(res: RawResponse): string {
  assert.equal(res.status, 200, `${res.status}: ${res.body.toString()}`);
  const type = res.header('content-type') ?? '';
  return type.startsWith('application/json') ? `app:${(JSON.parse(res.body.toString()) as { PATH_INFO: string }).PATH_INFO}` : res.body.toString();
}

export async function withConnection(fn: (c: RawConnection) => Promise<void>): Promise<void> {
  const c = await RawConnection.open(gh.port);
  try {
    await fn(c);
  } finally {
    c.close();
  }
}
