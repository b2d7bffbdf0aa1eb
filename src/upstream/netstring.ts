/**
 * The SCGI request head (scgi.txt, Neil Schemenauer): the variables as a
 * netstring, `LEN:NAME\0VALUE\0...,`, CONTENT_LENGTH first and SCGI=1, the
 * body right after. Netstrings are a few lines; no npm package is needed
 * (the few there are wrap a stream API this client does not use).
 */

/** `pairs` must not hold CONTENT_LENGTH or SCGI: they are put first here, as the protocol requires. */
export function encodeScgiHead(contentLength: number, pairs: readonly (readonly [string, string])[]): Buffer {
  let text = `CONTENT_LENGTH\0${contentLength}\0SCGI\x001\0`;
  for (const [name, value] of pairs) text += `${name}\0${value}\0`;
  const body = Buffer.from(text, 'latin1');
  return Buffer.concat([Buffer.from(`${body.length}:`), body, Buffer.from(',')]);
}

export type ScgiHead = { pairs: [string, string][]; used: number };

/**
 * The head at the start of `data`: its pairs and its length in bytes; null
 * while incomplete; an error message when it is not a netstring of pairs.
 */
export function decodeScgiHead(data: Buffer, limit: number): ScgiHead | null | string {
  const colon = data.indexOf(0x3a);
  if (colon < 0) return data.length > 10 || !/^\d*$/.test(data.toString('latin1')) ? 'not a netstring' : null;
  const lenText = data.toString('latin1', 0, colon);
  if (!/^\d{1,10}$/.test(lenText)) return 'not a netstring';
  const length = Number(lenText);
  if (length > limit) return `a head of ${length} bytes is over the limit`;
  if (data.length < colon + 1 + length + 1) return null;
  if (data[colon + 1 + length] !== 0x2c) return 'the netstring does not end with a comma';
  const fields = data.toString('latin1', colon + 1, colon + 1 + length).split('\0');
  if (fields.pop() !== '' || fields.length % 2 !== 0) return 'the variables are not NAME\\0VALUE\\0 pairs';
  const pairs: [string, string][] = [];
  for (let i = 0; i < fields.length; i += 2) pairs.push([fields[i]!, fields[i + 1]!]);
  return { pairs, used: colon + 1 + length + 1 };
}
