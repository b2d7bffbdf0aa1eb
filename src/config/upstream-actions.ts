/**
 * The route actions that pass requests to another server's protocol:
 * `fastcgi` (php-fpm), `scgi` and `uwsgi` (uWSGI's --scgi-socket and
 * --socket). Each field's comment is its user documentation.
 */
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { parseUpstream } from '../upstream/upstream-address.js';

const seconds = z.number({ error: 'must be a number of seconds' }).positive('must be more than 0 seconds');

/** `HOST:PORT`, `[IPv6]:PORT` or `unix:PATH` (a relative path is taken from the config file's directory). */
const upstream = (base: string) =>
  z.string().transform((text, ctx) => {
    const parsed = parseUpstream(text);
    if (typeof parsed === 'string') {
      ctx.addIssue({ code: 'custom', message: parsed });
      return z.NEVER;
    }
    return parsed.kind === 'unix' && !isAbsolute(parsed.path) ? `unix:${resolve(base, parsed.path)}` : text;
  });

/** A CGI variable name: what a back end can be given in `params`. */
const paramName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, 'must be a variable name such as SCRIPT_FILENAME');

function common(base: string) {
  return {
    /** The back end: HOST:PORT, [IPv6]:PORT or unix:PATH. */
    pass: upstream(base),
    /** Variables sent besides the standard ones; they replace a standard one of the same name (nginx's fastcgi_param). */
    params: z.record(paramName, z.string()).default({}),
    /** Time to open the connection; 504 past it. */
    connect_timeout: seconds.default(60),
    /** Time the back end may take to accept the next bytes of the request; 504 past it. */
    send_timeout: seconds.default(60),
    /** Time the back end may take to send the next bytes of the response (the first ones included); 504 past it. */
    read_timeout: seconds.default(60),
    /**
     * Take the response from the back end as fast as it comes, holding what
     * a slow client cannot take yet (in memory up to 1 MiB, then in a temp
     * file), so the back end is free at once (nginx's fastcgi_buffering);
     * false: the back end waits for the client.
     */
    buffering: z.boolean().default(true),
    /**
     * Connections to the back end at once at most; requests past it wait
     * (up to connect_timeout, then 504) for one to be free. 0: no limit.
     */
    max_connections: z.number().int('must be a whole number').min(0, 'must be 0 or more').default(0),
    /** Seconds a host name's addresses are used before it is resolved again (nginx's `resolver ... valid=`). */
    resolve_ttl: seconds.default(30),
  };
}

/** A regular expression with two groups: the script's path, then PATH_INFO (nginx's fastcgi_split_path_info). */
const splitPattern = z.string().transform((text, ctx) => {
  let re: RegExp;
  try {
    re = new RegExp(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `not a regular expression: ${(err as Error).message}` });
    return z.NEVER;
  }
  if (new RegExp(`${re.source}|`).exec('')!.length !== 3) {
    ctx.addIssue({ code: 'custom', message: 'needs two groups, the script and the path info, e.g. ^(.+\\.php)(/.*)$' });
    return z.NEVER;
  }
  return re;
});

export function fastcgiSchema(base: string) {
  return z
    .object({
      ...common(base),
      /**
       * The document root on the back end's machine: DOCUMENT_ROOT, and
       * SCRIPT_FILENAME is it joined with the script's path (the whole URL
       * path, as nginx's `root`). Without it the back end is an app mounted
       * at the route's path: SCRIPT_NAME is the path, PATH_INFO the rest.
       */
      root: z.string().min(1).transform((p) => resolve(base, p)).optional(),
      /** With `root`: the file a URL ending in / runs (nginx's fastcgi_index). */
      index: z.string().min(1).default('index.php'),
      /** With `root`: splits the path into the script and PATH_INFO, e.g. "^(.+\\.php)(/.*)$". */
      split_path_info: splitPattern.optional(),
      /** Idle kept-alive connections to keep (FCGI_KEEP_CONN); 0: a connection per request. */
      keepalive: z.number().int('must be a whole number').min(0, 'must be 0 or more').default(16),
    })
    .strict()
    .superRefine((f, ctx) => {
      if (f.split_path_info !== undefined && f.root === undefined) ctx.addIssue({ code: 'custom', path: ['split_path_info'], message: 'needs root' });
    });
}

export function scgiSchema(base: string) {
  return z.object(common(base)).strict();
}

const modifier = z.number().int('must be a whole number').min(0, 'must be 0 to 255').max(255, 'must be 0 to 255').default(0);

export function uwsgiSchema(base: string) {
  return z
    .object({
      ...common(base),
      /** The packet's modifier1: 0 is a WSGI app (uwsgi_modifier1). */
      modifier1: modifier,
      modifier2: modifier,
    })
    .strict();
}

export type FastcgiSettings = z.output<ReturnType<typeof fastcgiSchema>>;
export type ScgiSettings = z.output<ReturnType<typeof scgiSchema>>;
export type UwsgiSettings = z.output<ReturnType<typeof uwsgiSchema>>;
export type UpstreamCommon = Pick<ScgiSettings, 'pass' | 'params' | 'connect_timeout' | 'send_timeout' | 'read_timeout' | 'buffering' | 'resolve_ttl' | 'max_connections'>;
