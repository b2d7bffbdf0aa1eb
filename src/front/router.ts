/**
 * Picks the route for a request the way nginx picks a server and a location:
 * first the host (an exact name, then the longest matching `*.wildcard`,
 * then the routes with no host: the default server), then among that host's
 * routes the longest path prefix. A prefix matches whole segments: `/api`
 * matches `/api` and `/api/x`, not `/apix`.
 */
import type { Handler } from '../http/handler.js';

export interface RouteEntry {
  /** Host patterns, lower case; empty for any host. */
  hosts: readonly string[];
  /** URL prefix without trailing slash; '/' for everything. */
  path: string;
  maxRequestBody: number;
  handler: Handler;
  /** Reached only by an internal redirect (X-Accel-Redirect): a client asking for it gets 404, as from nginx's `internal`. */
  internal: boolean;
}

/** The route matched; the path below its prefix is `path.slice(prefix.length)`. The router's own record: nothing is made per request. */
export interface RouteMatch {
  readonly entry: RouteEntry;
  /** The prefix in the request's own (latin-1) terms, the form PATH_INFO is in; '' for '/'. */
  readonly prefix: string;
}

type Candidate = RouteMatch;

export class Router {
  private readonly exact = new Map<string, Candidate[]>();
  /** `*.example.com` stored as `.example.com`, longest first. */
  private readonly wildcards: { suffix: string; candidates: Candidate[] }[] = [];
  private readonly fallback: Candidate[] = [];

  constructor(readonly entries: readonly RouteEntry[]) {
    for (const entry of entries) {
      const candidate = { entry, prefix: entry.path === '/' ? '' : Buffer.from(entry.path, 'utf8').toString('latin1') };
      if (entry.hosts.length === 0 || entry.hosts.includes('*')) this.fallback.push(candidate);
      for (const host of entry.hosts) {
        if (host === '*') continue;
        if (host.startsWith('*.')) {
          const suffix = host.slice(1);
          let group = this.wildcards.find((w) => w.suffix === suffix);
          if (!group) this.wildcards.push((group = { suffix, candidates: [] }));
          group.candidates.push(candidate);
        } else {
          const list = this.exact.get(host) ?? [];
          list.push(candidate);
          this.exact.set(host, list);
        }
      }
    }
    this.wildcards.sort((a, b) => b.suffix.length - a.suffix.length);
    for (const list of [this.fallback, ...this.exact.values(), ...this.wildcards.map((w) => w.candidates)]) {
      list.sort((a, b) => b.prefix.length - a.prefix.length);
    }
  }

  /** `host` lower case without port; `path` percent-decoded (latin-1). */
  match(host: string, path: string): RouteMatch | null {
    const candidates = this.exact.get(host) ?? this.wildcards.find((w) => host.endsWith(w.suffix))?.candidates ?? this.fallback;
    for (const c of candidates) {
      const prefix = c.prefix;
      if (prefix === '' || (path.startsWith(prefix) && (path.length === prefix.length || path.charCodeAt(prefix.length) === 47 /* '/' */))) return c;
    }
    return null;
  }
}

