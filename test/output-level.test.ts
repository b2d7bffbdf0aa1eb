/**
 * levelOfOutput (src/log/output-level.ts): the label a worker's printed line
 * gets in the error log, from the level Python's usual log formats name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { levelOfOutput } from '../src/log/output-level.js';
import type { LogLevel } from '../src/log/logger.js';

const CASES: Array<[line: string, stream: LogLevel, label: LogLevel]> = [
  // logging.basicConfig: LEVEL:name:message
  ['WARNING:django.request:Not Found: /x', 'error', 'warning'],
  ['DEBUG:app:cache warmed', 'error', 'debug'],
  ['INFO:root:started', 'error', 'info'],
  ['CRITICAL:app:disk full', 'info', 'critical'],
  ['ERROR:app:boom', 'info', 'error'],
  // a level then spaces (uvicorn's and many apps' formats)
  ['INFO:     Application startup complete.', 'error', 'info'],
  ['WARNING something odd', 'error', 'warning'],
  // bracketed, with a time (Flask's default handler) or a time and a pid (gunicorn's)
  ['[2026-12-05 10:00:00,123] ERROR in views: boom', 'info', 'error'],
  ['[2026-12-05 10:00:00,123] WARNING in views: slow', 'error', 'warning'],
  ['[2026-12-05 10:00:00 +0000] [42] [INFO] Booting worker', 'error', 'info'],
  ['[WARN] low memory', 'error', 'warning'],
  // a timestamp first (logging's asctime)
  ['2026-12-05 10:00:00,123 INFO app: ready', 'error', 'info'],
  // the warnings module
  ['/srv/app/views.py:12: DeprecationWarning: use new_call()', 'error', 'warning'],
  // anything else keeps its stream's label
  ['Traceback (most recent call last):', 'error', 'error'],
  ['  File "/srv/app/views.py", line 12, in index', 'error', 'error'],
  ['Not Found: /x', 'error', 'error'],
  ['ERRORS are counted here', 'error', 'error'],
  ['the INFO: inside a line', 'error', 'error'],
  ['WARNING', 'error', 'error'],
  ['hello from print()', 'info', 'info'],
  ['', 'info', 'info'],
];

test('a worker line is labelled by the level it names, else by its stream', () => {
  for (const [line, stream, label] of CASES) assert.equal(levelOfOutput(line, stream), label, JSON.stringify(line));
});
