/** HTTP's token (RFC 9110 §5.6.2): method names, header names, chunk-extension names and values. */

/** The characters of a token, as a regular expression's character class (inside `[...]`). */
export const TCHAR_CLASS = "!#$%&'*+\\-.^_`|~0-9A-Za-z";

/** A whole string that is a token. */
export const TOKEN = new RegExp(`^[${TCHAR_CLASS}]+$`);

const TCHAR = new Uint8Array(256);
const ONE_TCHAR = new RegExp(`[${TCHAR_CLASS}]`);
for (let c = 0; c < 256; c++) TCHAR[c] = ONE_TCHAR.test(String.fromCharCode(c)) ? 1 : 0;

/** Whether the character code `c` may be in a token. */
export function isTchar(c: number): boolean {
  return c < 256 && TCHAR[c] === 1;
}
