/**
 * The two halves of the wire must agree: src/wire/frames.ts (`const enum
 * Frame`, HEADER_SIZE, the header's byte layout) and python/gatehouse_wire.py
 * (its frame constants and the struct format of the header). A const enum
 * leaves no object at run time, so both files are read as text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { ROOT } from './helpers/gatehouse.js';
import { encodeFrame, HEADER_SIZE } from '../src/wire/frames.js';

const TS = readFileSync(`${ROOT}src/wire/frames.ts`, 'utf8');
const PY = readFileSync(`${ROOT}python/gatehouse_wire.py`, 'utf8');

/** `export const enum Frame { NAME = N, ... }` → name → number. */
function tsFrames(): Map<string, number> {
  const body = /export const enum Frame \{([^}]*)\}/.exec(TS);
  assert.ok(body, 'src/wire/frames.ts has `export const enum Frame { ... }`');
  const out = new Map<string, number>();
  for (const raw of body[1]!.split('\n')) {
    const line = raw.replace(/\/\/.*$/, '').trim();
    if (line === '') continue;
    const m = /^([A-Z][A-Z0-9_]*)\s*=\s*(\d+),?$/.exec(line);
    assert.ok(m, `every member has an explicit number: ${JSON.stringify(raw)}`);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/**
 * gatehouse_wire.py's frame constants: the `NAME = N` lines from the first
 * `# Frame types` comment to the first line that is neither such an
 * assignment nor another `# Frame types` comment (a blank line ends it).
 */
function pyFrames(): Map<string, number> {
  const lines = PY.split('\n');
  const start = lines.findIndex((l) => l.startsWith('# Frame types'));
  assert.ok(start >= 0, 'python/gatehouse_wire.py has a `# Frame types` block');
  const out = new Map<string, number>();
  for (const line of lines.slice(start)) {
    if (line.startsWith('# Frame types')) continue;
    const m = /^([A-Z][A-Z0-9_]*) = (\d+)\s*(#.*)?$/.exec(line);
    if (!m) break;
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** The header as the Python struct format describes it: [offset, bytes] per field, and the total. */
function pyHeaderLayout(): { fields: Array<[number, number]>; size: number } {
  const m = /^HEADER = struct\.Struct\("([^"]*)"\)/m.exec(PY);
  assert.ok(m, 'python/gatehouse_wire.py defines HEADER = struct.Struct("...")');
  const format = m[1]!;
  assert.equal(format[0], '<', `little-endian with no padding: ${format}`);
  const sizes: Record<string, number> = { B: 1, b: 1, H: 2, h: 2, I: 4, i: 4, Q: 8, q: 8 };
  const fields: Array<[number, number]> = [];
  let offset = 0;
  for (const c of format.slice(1)) {
    const size = sizes[c];
    assert.ok(size !== undefined, `a format code this test knows: ${c} in ${format}`);
    fields.push([offset, size]);
    offset += size;
  }
  return { fields, size: offset };
}

test('wire: the frame types have the same names and numbers in frames.ts and gatehouse_wire.py', () => {
  const ts = tsFrames();
  const py = pyFrames();
  assert.ok(ts.size >= 14, `found the frame types in frames.ts (${ts.size})`);
  assert.deepEqual(Object.fromEntries([...py].sort()), Object.fromEntries([...ts].sort()));
  assert.equal(new Set(ts.values()).size, ts.size, 'no two frame types share a number');
  for (const n of ts.values()) assert.ok(n >= 0 && n <= 255, `a frame type fits the u8 type field: ${n}`);
});

test('wire: the header has the same layout on both sides (type u8, id u32, length u32, little-endian)', () => {
  const py = pyHeaderLayout();
  assert.equal(py.size, HEADER_SIZE, 'HEADER_SIZE');
  const m = /^export const HEADER_SIZE = (\d+);/m.exec(TS);
  assert.equal(Number(m?.[1]), py.size, 'the HEADER_SIZE in frames.ts');
  assert.match(PY, /^HEADER_SIZE = HEADER\.size$/m, 'gatehouse_wire.HEADER_SIZE is the struct size');
  assert.deepEqual(py.fields, [[0, 1], [1, 4], [5, 4]]);
  // What frames.ts writes at those offsets.
  const frame = encodeFrame(0x0c, 0x01020304, Buffer.alloc(0x0a0b));
  assert.equal(frame[0], 0x0c);
  assert.equal(frame.readUInt32LE(1), 0x01020304);
  assert.equal(frame.readUInt32LE(5), 0x0a0b);
});

test('wire: a header packed by gatehouse_wire.py is the bytes frames.ts writes', () => {
  const script = 'import sys; sys.path.insert(0, "python"); import gatehouse_wire as w; sys.stdout.write(w.pack_header(w.RESPONSE, 0x01020304, 0x0a0b).hex())';
  const r = spawnSync('python3', ['-c', script], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const ts = tsFrames().get('RESPONSE')!;
  assert.equal(r.stdout, encodeFrame(ts, 0x01020304, Buffer.alloc(0x0a0b)).subarray(0, HEADER_SIZE).toString('hex'));
});
