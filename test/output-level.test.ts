/**
 * levelOfOutput (src/log/output-level.ts): the label a worker's printed line
 * gets in the error log, from the level Python's usual log formats name; and
 * forwardOutput (src/log/worker-output.ts), which cuts the output into lines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { levelOfOutput } from '../src/log/output-level.js';
import type { Logger, LogLevel } from '../src/log/logger.js';
import { forwardOutput, MAX_LINE } from '../src/log/worker-output.js';

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

test('forwardOutput: a line per newline, its level labelled; output with no newline is logged in pieces of MAX_LINE, not held whole', async () => {
  const out = new PassThrough();
  const logged: Array<[LogLevel, string, number]> = [];
  const logger = { log: (level: LogLevel, line: string, pid: number) => void logged.push([level, line, pid]) } as unknown as Logger;
  forwardOutput(out, 'error', logger, 42);
  out.write('WARNING:app:first\nsecond pa');
  out.write('rt\n');
  out.write('\r 10%'.repeat(10_000)); // a progress bar redrawn, never a newline: 50,000 characters
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(logged.length >= 5, 'the held progress bar was logged before any newline came');
  out.end('\rdone');
  await once(out, 'end');
  assert.deepEqual(logged.slice(0, 2), [['warning', 'WARNING:app:first', 42], ['error', 'second part', 42]]);
  const bar = logged.slice(2).map(([, line]) => line);
  assert.ok(bar.every((line) => line.length <= MAX_LINE), `pieces of at most ${MAX_LINE}: ${bar.map((l) => l.length).join(', ')}`);
  assert.equal(bar.join(''), '\r 10%'.repeat(10_000) + '\rdone', 'nothing lost');
});
