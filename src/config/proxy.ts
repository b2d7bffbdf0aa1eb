/**
 * The `proxy` route action's settings (nginx's `proxy_pass` to an `upstream`
 * block, with its `proxy_*` directives as the reference). Each field's
 * comment is its user documentation.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { parseProxyTarget } from '../upstream/proxy-target.js';
import { headerName, size } from './setting-types.js';

const seconds = z.number({ error: 'must be a number of seconds' }).nonnegative('must be 0 or more seconds');
const count = (min: number) => z.number({ error: 'must be a whole number' }).int('must be a whole number').min(min, `must be at least ${min}`);

/** `host:port`, `unix:PATH`, `http://host:port` or `https://host:port`. */
const address = z.string().superRefine((text, ctx) => {
  const target = parseProxyTarget(text);
  if (typeof target === 'string') ctx.addIssue({ code: 'custom', message: target });
});

const upstreamSchema = z.union([
  address.transform((a) => ({ address: a, weight: 1, max_fails: 1, fail_timeout: 10, backup: false })),
  z
    .object({
      address,
      /** Share of the requests under round_robin (nginx's `weight`). */
      weight: count(1).max(1000, 'must be at most 1000').default(1),
      /** Failures within fail_timeout that mark the upstream down for fail_timeout; 0: never marked down. */
      max_fails: count(0).default(1),
      fail_timeout: seconds.default(10),
      /** Used only while every other upstream is down or has failed this request (nginx's `server ... backup`); not with balance = "hash". */
      backup: z.boolean().default(false),
    })
    .strict(),
]);

/** A header value: no line breaks or other control characters. */
const headerValue = z.string().regex(/^[\t\x20-\x7e\x80-\xff]*$/, 'must have no control characters');

const healthCheckSchema = z
  .object({
    /** Seconds between checks of each upstream. */
    interval: z.number({ error: 'must be a number of seconds' }).positive('must be more than 0 seconds').default(5),
    /** The path asked for (GET). */
    path: z.string().startsWith('/', 'must start with /').default('/'),
    /** Statuses that mean healthy; default any 2xx or 3xx. */
    status: z.array(count(100).max(599, 'must be an HTTP status from 100 to 599')).min(1).optional(),
    /** A check not answered within this many seconds fails. */
    timeout: z.number().positive('must be more than 0 seconds').default(2),
  })
  .strict();

export function proxySchema(base: string) {
  return z
    .object({
      /** Where requests go: a list of addresses, each a string or a table with weight, max_fails, fail_timeout. */
      upstreams: z.array(upstreamSchema).min(1, 'needs at least one upstream'),
      /**
       * How an upstream is picked: `round_robin` (by weight, the default),
       * `least_conn` (fewest requests under way), or `hash` on `hash_key`
       * (consistent: adding or removing an upstream moves few keys).
       */
      balance: z.enum(['round_robin', 'least_conn', 'hash'], { error: 'must be round_robin, least_conn or hash' }).default('round_robin'),
      /** For `hash`: `client` (the client address), `header:NAME` or `cookie:NAME`. */
      hash_key: z.string().regex(/^(client|header:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|cookie:[^\s;=]+)$/, 'must be client, header:NAME or cookie:NAME').default('client'),
      /**
       * What replaces the route's path prefix (nginx's `proxy_pass
       * http://up/uri`): with path = "/api" and pass_path = "/", /api/x goes
       * up as /x. Absent: the path goes up as the client sent it.
       */
      pass_path: z.string().startsWith('/', 'must start with /').optional(),
      /** The Host sent upstream; absent: the client's own Host. */
      host: headerValue.min(1).optional(),
      /** Headers set on the request sent upstream; "" removes the header. */
      request_headers: z.record(headerName, headerValue).default({}),
      /** Headers set on the response sent to the client; "" removes the header. */
      response_headers: z.record(headerName, headerValue).default({}),
      /** Rewrite a Location or Refresh pointing at the upstream to point at this server and route (nginx's `proxy_redirect default`). */
      rewrite_location: z.boolean().default(true),
      /** Seconds to open a connection to an upstream (504 past it; a refused connection is 502). */
      connect_timeout: seconds.default(60),
      /** Seconds the upstream may take to accept the next bytes of the request. */
      send_timeout: seconds.default(60),
      /** Seconds the upstream may stay silent: before the response head and between body bytes (504). */
      read_timeout: seconds.default(60),
      /**
       * Read the upstream's response as fast as it comes, holding up to
       * buffer_size in memory for a slow client, so the upstream is free
       * early (nginx's `proxy_buffering`); false: pass each piece on as the
       * client takes it.
       */
      buffering: z.boolean().default(true),
      /** Memory a response may use while the client is slower than the upstream (buffering on); past it the rest goes to a temp file. */
      buffer_size: size.default(1024 ** 2),
      /**
       * Bytes of a response the temp file holds at most for a slow client
       * (nginx's proxy_max_temp_file_size); past them the upstream waits for
       * the client. 0: no temp file, the upstream waits past buffer_size.
       */
      max_temp_file_size: size.default(1024 ** 3),
      /** Read the whole request body before an upstream is picked (a slow client holds no upstream connection); false: stream it. */
      request_buffering: z.boolean().default(true),
      /** Tries at most, in all, for one request (each on another upstream); 0: as many as there are upstreams. */
      tries: count(0).default(0),
      /**
       * Seconds a request may spend on its tries (nginx's
       * proxy_next_upstream_timeout): no further try starts after it, and a
       * try still waiting for its response head then ends in 504; 0: no limit.
       */
      tries_timeout: seconds.default(0),
      /** Also retry requests that are not idempotent (POST, PATCH, LOCK): only if the upstream can take them twice. */
      retry_non_idempotent: z.boolean().default(false),
      /** Seconds an idle kept-alive connection stays open. */
      keepalive_timeout: seconds.default(60),
      /** Seconds an upstream host name's addresses are used before it is resolved again (nginx's `resolver ... valid=`). */
      resolve_ttl: z.number({ error: 'must be a number of seconds' }).positive('must be more than 0 seconds').default(30),
      /** Connections to each upstream at most (requests past it wait); 0: no limit. */
      max_connections: count(0).default(0),
      /** For https:// upstreams: check the certificate (on by default). */
      tls_verify: z.boolean().default(true),
      /** For https:// upstreams: a PEM file of CAs to trust instead of the system's. */
      tls_ca: z
        .string()
        .min(1)
        .transform((p) => resolve(base, p))
        .refine((p) => existsSync(p), 'file does not exist')
        .optional(),
      /** Active health checks: each upstream is asked for `path` every `interval`; one that fails gets no traffic until a check passes. */
      health_check: healthCheckSchema.optional(),
    })
    .strict()
    .superRefine((p, ctx) => {
      const backups = p.upstreams.flatMap((u, i) => (u.backup ? [i] : []));
      if (p.balance === 'hash') for (const i of backups) ctx.addIssue({ code: 'custom', path: ['upstreams', i, 'backup'], message: 'cannot be used with balance = "hash"' });
      else if (backups.length === p.upstreams.length) ctx.addIssue({ code: 'custom', path: ['upstreams'], message: 'needs at least one upstream that is not a backup' });
    });
}

export type ProxySettings = z.output<ReturnType<typeof proxySchema>>;
export type ProxyUpstreamSettings = ProxySettings['upstreams'][number];

/**
 * `--proxy URL=UPSTREAM`: a route at URL with a proxy action to one
 * upstream and the defaults. UPSTREAM as in `upstreams`; a path after an
 * http(s):// authority is `pass_path` (`/api=http://127.0.0.1:9000/` sends
 * /api/x up as /x, as nginx's `proxy_pass http://127.0.0.1:9000/`).
 */
export function proxyShorthand(base: string) {
  const action = proxySchema(base);
  return z.string().transform((text, ctx) => {
    const eq = text.indexOf('=');
    const path = text.slice(0, eq).replace(/\/+$/, '') || '/';
    const m = /^(https?:\/\/[^/]+)(\/.*)?$/i.exec(text.slice(eq + 1));
    const upstream = m === null ? text.slice(eq + 1) : m[1]!;
    const target = parseProxyTarget(upstream);
    const problem =
      eq < 0 ? 'expected URL=UPSTREAM, e.g. /api=http://127.0.0.1:9000'
      : !path.startsWith('/') ? 'the URL part must start with /'
      : typeof target === 'string' ? target
      : undefined;
    const parsed = problem === undefined ? action.safeParse({ upstreams: [upstream], ...(m?.[2] === undefined ? {} : { pass_path: m[2] }) }) : undefined;
    if (parsed?.success) return { path, proxy: parsed.data };
    ctx.addIssue({ code: 'custom', message: problem ?? parsed!.error!.issues[0]!.message });
    return z.NEVER;
  });
}
