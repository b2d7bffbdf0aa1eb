/** HTTP's token (RFC 9110 §5.6.2): method names, header names, chunk-extension names and values. */

const TCHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** A whole string that is a token. */
export const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const TCHAR = new Uint8Array(256);
for (let i = 0; i < TCHARS.length; i++) TCHAR[TCHARS.charCodeAt(i)] = 1;

/** Whether the character code `c` may be in a token. */
export function isTchar(c: number): boolean {
  return c < 256 && TCHAR[c] === 1;
}
