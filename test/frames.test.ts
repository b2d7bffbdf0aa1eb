import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeFile, decodeResponse, encodeEmpty, encodeFrame, encodeRequest, Frame, FrameDecoder, HEADER_SIZE } from '../src/wire/frames.js';

test('a REQ frame carries the environ block and the body after a length prefix', () => {
  const frame = encodeRequest(7, 'REQUEST_METHOD\0GET\0PATH_INFO\0/caf\xe9', Buffer.from('body'));
  assert.equal(frame[0], Frame.REQ);
  assert.equal(frame.readUInt32LE(1), 7);
  assert.equal(frame.readUInt32LE(5), frame.length - HEADER_SIZE);
  const envLen = frame.readUInt32LE(9);
  assert.equal(frame.toString('latin1', 13, 13 + envLen), 'REQUEST_METHOD\0GET\0PATH_INFO\0/caf\xe9');
  assert.equal(envLen, 34, 'latin-1: one byte per character');
  assert.equal(frame.subarray(13 + envLen).toString(), 'body');
});

test('the decoder cuts frames at any split point, including inside headers', () => {
  const head = Buffer.from('200 OK\0Content-Type\0text/plain');
  const payload = Buffer.concat([Buffer.alloc(4), head, Buffer.from('hello')]);
  payload.writeUInt32LE(head.length, 0);
  const stream = Buffer.concat([encodeFrame(Frame.RESPONSE, 1, payload), encodeEmpty(Frame.END, 2), encodeFrame(Frame.BODY, 3, Buffer.from('x'.repeat(100)))]);
  for (let split = 0; split <= stream.length; split++) {
    const got: Array<[number, number, string]> = [];
    const d = new FrameDecoder((type, id, p) => got.push([type, id, p.toString('latin1')]));
    d.push(stream.subarray(0, split));
    d.push(stream.subarray(split));
    assert.equal(got.length, 3, `split at ${split}`);
    assert.deepEqual(got[1], [Frame.END, 2, '']);
    assert.equal(d.buffered, 0);
    const r = decodeResponse(Buffer.from(got[0]![2], 'latin1'));
    assert.deepEqual(r.head, ['200 OK', 'Content-Type', 'text/plain']);
    assert.equal(r.body.toString(), 'hello');
  }
});

test('a FILE frame names offset, length, device, inode and a path of any bytes', () => {
  const path = Buffer.from('/tmp/caf\xc3\xa9.bin', 'latin1');
  const spec = decodeFile(Buffer.concat([Buffer.from('10\x00200\x0064769\x00123456\x00'), path]));
  assert.deepEqual({ ...spec, path: spec.path.toString('latin1') }, { offset: 10, length: 200, dev: 64769, ino: 123456, path: path.toString('latin1') });
  assert.throws(() => decodeFile(Buffer.from('1\x002')), /malformed/);
});
