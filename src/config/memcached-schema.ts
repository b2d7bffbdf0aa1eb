/**
 * A route's `memcached`: pages an app writes into memcached are served from
 * there, and a miss falls through to the route's app (nginx's memcached_pass
 * with an error_page fallback). See src/cache/memcached-pages.ts.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { keyTemplateProblem } from '../cache/cache-key.js';

export const memcachedSchema = z
  .object({
    /** The memcached server, HOST:PORT. */
    server: z.string().refine((s) => {
      const m = /^(.+):(\d{1,5})$/.exec(s);
      return m !== null && Number(m[2]) > 0 && Number(m[2]) < 65536 && (isIP(m[1]!.replace(/^\[|\]$/g, '')) !== 0 || /^[A-Za-z0-9.-]+$/.test(m[1]!));
    }, 'must be HOST:PORT, e.g. 127.0.0.1:11211'),
    /** The key looked up: a template of $scheme, $host, $uri, $args, $request_uri, $cookie_NAME (nginx's $memcached_key). */
    key: z
      .string()
      .superRefine((t, ctx) => {
        const problem = keyTemplateProblem(t);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .default('$uri'),
    /** The Content-Type the pages are served with. */
    content_type: z.string().min(1).default('text/html; charset=utf-8'),
  })
  .strict();
