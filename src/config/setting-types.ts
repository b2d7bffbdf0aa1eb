/**
 * The kinds of value settings take (sizes, seconds, paths checked on disk,
 * addresses, host patterns), each with the message that says what a bad
 * value should look like; schema.ts and the action schemas build on them.
 */
import { existsSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';
import { parseBind } from './bind.js';
import { TOKEN } from '../http/token.js';

/** `100m`, `64k`, `1g` or a plain number of bytes (nginx's size syntax). */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+)([kmg]?)b?$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(m[1]) * unit;
}

const SIZE_HINT = 'must be a size such as 1048576, 64k, 10m or 1g';
export const size = z.union([
  z.number({ error: SIZE_HINT }).int(SIZE_HINT).min(0, SIZE_HINT),
  z.string().transform((text, ctx) => {
    const n = parseSize(text);
    if (n === undefined) ctx.addIssue({ code: 'custom', message: SIZE_HINT });
    return n ?? 0;
  }),
], { error: SIZE_HINT });

export const count = (min: number) => z.number({ error: 'must be a whole number' }).int('must be a whole number').min(min, `must be at least ${min}`);
export const seconds = z.number({ error: 'must be a number of seconds' }).nonnegative('must be 0 or more seconds');

/** A filesystem path, made absolute against the directory the setting came from (the config file's, or the current one). */
export const path = (base: string) => z.string().min(1, 'must not be empty').transform((p) => resolve(base, p));
export const directory = (base: string) =>
  path(base).superRefine((dir, ctx) => {
    if (!existsSync(dir)) ctx.addIssue({ code: 'custom', message: `directory ${dir} does not exist` });
    else if (!statSync(dir).isDirectory()) ctx.addIssue({ code: 'custom', message: `${dir} is not a directory` });
  });
export const file = (base: string) =>
  path(base).superRefine((f, ctx) => {
    if (!existsSync(f)) ctx.addIssue({ code: 'custom', message: `file ${f} does not exist` });
  });

export const bindAddress = z.string().superRefine((value, ctx) => {
  const problem = parseBind(value).problem;
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** A peer allowed to set X-Forwarded-* / Forwarded: an IP, a CIDR block, `unix` (unix-socket clients) or `*`. */
export const trustedPeer = z.string().superRefine((value, ctx) => {
  if (value === '*' || value === 'unix') return;
  const [ip, bits, extra] = value.split('/');
  const family = isIP(ip ?? '');
  const max = family === 6 ? 128 : 32;
  const ok = family !== 0 && extra === undefined && (bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= max));
  if (!ok) ctx.addIssue({ code: 'custom', message: 'must be an IP address, a CIDR block such as 10.0.0.0/8, unix or *' });
});

/** A host name a route answers for: `example.com`, `*.example.com`, or `*` for any. */
export const hostPattern = z
  .string()
  .transform((h) => h.toLowerCase().replace(/\.$/, ''))
  .refine((h) => h === '*' || /^(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/.test(h) || isIP(h) !== 0, {
    message: 'must be a host name such as example.com or *.example.com',
  });

/** A header name (HTTP's token), as written. */
export const headerName = z.string().regex(TOKEN, 'must be a header name');
export const urlPath = z.string().refine((p) => p.startsWith('/'), 'must start with /');
