/**
 * PEP 3333 conformance, end to end (test/helpers/wsgi-cases.ts): wsgi.input
 * read every way Python's io objects allow (read, read(n), readline,
 * readline(n), readlines, iteration, a mix), on a small body and on one
 * spilled to a temp file, and that temp file removed after the request.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { bodyTmp, eventually, gh, serveWsgiCases, T } from './helpers/wsgi-cases.js';

serveWsgiCases();

// ---- wsgi.input ------------------------------------------------------------------------

/** Deterministic bytes: lines of many lengths, binary bytes, \r, NUL, a 100 KiB line, no final newline. */
function largeBody(size: number): Buffer {
  const buf = Buffer.alloc(size);
  let x = 0x2545f491;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const b = (x >>> 0) & 0xff;
    buf[i] = b % 97 === 0 ? 0x0a : b;
  }
  buf.fill(0x61, 200_000, 300_000); // one long line crossing any buffer boundary
  if (buf[size - 1] === 0x0a) buf[size - 1] = 0x62;
  return buf;
}

const SMALL_BODY = Buffer.from('first line\nsecond, longer line\n\n\r\nbinary \x00\xff\x80 bytes\nno newline at the end', 'latin1');
const LARGE_BODY = largeBody(640 * 1024 + 7);

function lineEnd(body: Buffer, pos: number, limit: number): number {
  const end = Math.min(body.length, pos + limit);
  const nl = body.indexOf(0x0a, pos);
  return nl >= 0 && nl < end ? nl + 1 : end;
}

/** What each read returns, as Python's io objects do it. */
function expectedPieces(op: string, body: Buffer, n: number): number[] {
  const out: number[] = [];
  let pos = 0;
  const read = (size: number) => {
    const len = Math.min(size, body.length - pos);
    out.push(len);
    pos += len;
  };
  const readline = (limit = Infinity) => {
    const end = lineEnd(body, pos, limit);
    out.push(end - pos);
    pos = end;
  };
  switch (op) {
    case 'read':
      read(Infinity);
      break;
    case 'readn':
      while (pos < body.length) read(n);
      break;
    case 'readline':
    case 'readlines':
    case 'iter':
      while (pos < body.length) readline();
      break;
    case 'readline_n':
      while (pos < body.length) readline(n);
      break;
    case 'mixed':
      read(10);
      readline();
      readline(5);
      read(100);
      read(0);
      readline();
      read(Infinity);
      break;
    default:
      throw new Error(op);
  }
  return out;
}

interface InputReport {
  pieces: number[];
  all_bytes: boolean;
  sha256: string;
  after_eof: number[];
  content_length: string | null;
  input_name: string | null;
  input_file_exists: boolean;
  input_terminated: unknown;
}

async function postInput(query: string, body: Buffer): Promise<InputReport> {
  const res = await fetch(`${gh.url}/input?${query}`, { method: 'POST', body: new Uint8Array(body) });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as InputReport;
}

const INPUT_OPS: Array<{ op: string; label: string; small: number; large: number }> = [
  { op: 'read', label: 'read()', small: 0, large: 0 },
  { op: 'readn', label: 'read(n) in a loop', small: 4, large: 65539 },
  { op: 'readline', label: 'readline() in a loop', small: 0, large: 0 },
  { op: 'readline_n', label: 'readline(n) in a loop', small: 5, large: 1000 },
  { op: 'readlines', label: 'readlines()', small: 0, large: 0 },
  { op: 'iter', label: 'iteration (for line in wsgi.input)', small: 0, large: 0 },
  { op: 'mixed', label: 'read(10), readline(), readline(5), read(100), read(0), readline(), read()', small: 0, large: 0 },
];

for (const { op, label, small, large } of INPUT_OPS) {
  test(`wsgi.input: ${label} on a small body and on a body > 256 KiB (spilled to a temp file)`, T, async () => {
    for (const [body, n, big] of [
      [SMALL_BODY, small, false],
      [LARGE_BODY, large, true],
    ] as const) {
      const what = `${op} on ${body.length} bytes`;
      const report = await postInput(`op=${op}&n=${n}`, body);
      assert.deepEqual(report.pieces, expectedPieces(op, body, n), `${what}: sizes of the pieces returned`);
      assert.equal(report.sha256, createHash('sha256').update(body).digest('hex'), `${what}: the bytes read`);
      assert.equal(report.all_bytes, true, `${what}: every read returns bytes`);
      assert.deepEqual(report.after_eof, [0, 0, 0], `${what}: read(), read(5), readline() at EOF return b''`);
      assert.equal(report.content_length, String(body.length), `${what}: CONTENT_LENGTH`);
      assert.equal(report.input_terminated, true, `${what}: wsgi.input_terminated`);
      if (big) {
        assert.ok(report.input_name?.startsWith(join(bodyTmp, 'gatehouse-body-')), `${what}: the body was spilled to a temp file (${report.input_name})`);
        assert.equal(report.input_file_exists, true);
      }
    }
  });
}

function spilledFiles(): string[] {
  return readdirSync(bodyTmp).filter((f) => f.startsWith('gatehouse-body-'));
}

test('wsgi.input: the temp file a large body was spilled to is gone after the request (also when the app fails)', T, async () => {
  const report = await postInput('op=read', LARGE_BODY);
  const name = report.input_name;
  assert.ok(name !== null && name.startsWith(bodyTmp), `the body went through a temp file (${name})`);
  assert.equal(report.input_file_exists, true, 'the file existed while the app ran');
  await eventually(`${name} to be removed`, 2000, () => (existsSync(name) ? undefined : true));

  const res = await fetch(`${gh.url}/input?op=read&fail=1`, { method: 'POST', body: new Uint8Array(LARGE_BODY) });
  assert.equal(res.status, 500);
  await res.arrayBuffer();
  await eventually('no gatehouse-body-* file left after a failed request', 2000, () => (spilledFiles().length === 0 ? true : undefined));
});
