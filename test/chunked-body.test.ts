/**
 * The fast path's chunked body reader (src/front/chunked-body.ts) on its own:
 * a table of bodies in, what it reads out (the data, what follows the body,
 * or llhttp's fault), whole and cut at every pair of places. Chunk
 * extensions with whitespace around `;` or `=` (RFC 9112 §7.1.1's BWS) are
 * read; everything else is read as llhttp reads it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChunkedBody, sizeAlone } from '../src/front/chunked-body.js';

/** Feeds `body` in the pieces `cuts` makes; the data read, then `|` and what followed the body, or `fault CODE`. */
function read(body: string, cuts: number[] = []): string {
  const data: Buffer[] = [];
  const reader = new ChunkedBody(16 * 1024, (d) => data.push(Buffer.from(d)) > 0);
  const bytes = Buffer.from(body, 'latin1');
  let from = 0;
  for (const to of [...cuts, bytes.length]) {
    const rest = reader.feed(bytes.subarray(from, to));
    if (rest instanceof Error) return `fault ${rest.code}`;
    if (reader.done) return `${Buffer.concat(data).toString('latin1')}|${(rest?.toString('latin1') ?? '') + bytes.subarray(to).toString('latin1')}`;
    from = to;
  }
  reader.close();
  return `${Buffer.concat(data).toString('latin1')} (not over)`;
}

const CASES: Array<[string, string, string]> = [
  ['plain', '5\r\nhello\r\n0\r\n\r\n', 'hello|'],
  ['extensions without whitespace (llhttp reads them)', '5;a=b;c="d e"\r\nhello\r\n0;x\r\n\r\n', 'hello|'],
  ['a space after ";"', '5; name=value\r\nhello\r\n0\r\n\r\n', 'hello|'],
  ['a space before ";"', '5 ;name=value\r\nhello\r\n0\r\n\r\n', 'hello|'],
  ['spaces and tabs around "=", a quoted value', '5\t; n \t= "a \\" b"\r\nhello\r\n0\r\n\r\n', 'hello|'],
  ['on the last chunk, then trailers and the next request', '3; a=b\r\nabc\r\n2 ; c = d\r\nde\r\n0 ; e\r\nX-T: 1\r\n\r\nGET /', 'abcde|GET /'],
  ['a name without a value, then another extension', '5; a ; b=c\r\nhello\r\n0\r\n\r\n', 'hello|'],
  ['whitespace after the size alone (not in the grammar)', '5 \r\nhello\r\n0\r\n\r\n', 'fault HPE_INVALID_CHUNK_SIZE'],
  ['whitespace before the CRLF', '5;a=b \r\nhello\r\n0\r\n\r\n', 'fault HPE_STRICT'],
  ['no name after ";"', '5; =b\r\nhello\r\n0\r\n\r\n', 'fault HPE_STRICT'],
  ['a control byte in a value', '5; a=\x01\r\nhello\r\n0\r\n\r\n', 'fault HPE_STRICT'],
  ['whitespace inside a name', '5; a b=c\r\nhello\r\n0\r\n\r\n', 'fault HPE_STRICT'],
  ['a bare LF', '5; a=b\nhello\r\n0\r\n\r\n', 'fault HPE_STRICT'],
  ['not a size', 'x; a=b\r\nhello\r\n0\r\n\r\n', 'fault HPE_INVALID_CHUNK_SIZE'],
  ['0x before the size', '0x5\r\nhello\r\n0\r\n\r\n', 'fault HPE_INVALID_CHUNK_SIZE'],
  ['data longer than its size', '3; a=b\r\nhello\r\n0\r\n\r\n', 'fault HPE_STRICT'],
  ['a line with whitespace past the length looked at: llhttp judges it', `5; a=${'b'.repeat(2000)}\r\nhello\r\n0\r\n\r\n`, 'fault HPE_STRICT'],
  ['a long line without whitespace: llhttp reads it', `5;a=${'b'.repeat(2000)}\r\nhello\r\n0\r\n\r\n`, 'hello|'],
  ['extensions over llhttp\'s 16 KiB', `5;a=${'b'.repeat(17000)}\r\nhello\r\n0\r\n\r\n`, 'fault HPE_CHUNK_EXTENSIONS_OVERFLOW'],
  ['a chunk\'s data that looks like a size line is data', '8\r\n5; a=b\r\n\r\n0\r\n\r\n', '5; a=b\r\n|'],
];

for (const [name, body, want] of CASES) {
  test(`chunked body: ${name}`, () => {
    assert.equal(read(body), want, 'whole');
    if (body.length > 200) return;
    for (let i = 0; i <= body.length; i++) {
      for (let j = i; j <= body.length; j++) assert.equal(read(body, [i, j]), want, `cut at ${i} and ${j}`);
    }
  });
}

test('a fault in a line comes as soon as the line can no longer be one to read (not at its end)', () => {
  const reader = new ChunkedBody(16 * 1024, () => true);
  assert.equal(reader.feed(Buffer.from('5; a=b')), null, 'well formed so far: waits for the rest');
  const fault = reader.feed(Buffer.from(' @'));
  assert.ok(fault instanceof Error, 'a byte no extension has: refused at once');
});

test('sizeAlone: the size alone only for well-formed lines with whitespace outside quotes', () => {
  assert.equal(sizeAlone('1a ; x = "y z"\r\n'), '1a\r\n');
  assert.equal(sizeAlone('1a;x="y z"\r\n'), null);
  assert.equal(sizeAlone('1a\r\n'), null);
  assert.equal(sizeAlone('1a; x\n'), null);
  assert.equal(sizeAlone('1a; x\r\n\r\n'), null);
});
