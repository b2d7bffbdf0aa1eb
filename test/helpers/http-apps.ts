/**
 * What the HTTP/1.1 front's test files share (test/http-connections.test.ts,
 * http-bodies): test/apps/http_apps.py, whose answers echo what the app saw,
 * the arguments each test's own server runs with, and a GET's bytes.
 */
import assert from 'node:assert/strict';
import { APPS } from './gatehouse.js';
import type { RawResponse } from './raw-connection.js';

export const APP = `${APPS}/http_apps.py:app`;
/** Every test runs its own server: 3 workers, 1 KiB body limit. */
export const ARGS = [APP, '--workers', '3', '--max-request-body', '1k'];

export interface Echo {
  method: string;
  path: string;
  query: string;
  protocol: string;
  content_length: string | null;
  transfer_encoding: string | null;
  remote_port: string;
  body: string;
  time: number;
}

export function echo(res: RawResponse): Echo {
  assert.equal(res.status, 200, `expected 200, got ${res.status}: ${res.body.toString()}`);
  return JSON.parse(res.body.toString()) as Echo;
}

export function get(path: string, extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: test\r\n${extra}\r\n`;
}
