/**
 * The `static` action and `--static URL=DIR`: files served by the front itself (nginx's
 * `location /static/ { alias DIR/; }`), never reaching Python.
 *
 * Paths are resolved here, through the file cache: dotfiles (and so `..`)
 * are 404, a directory gets the first of its `index` files that exists (403
 * without one, as nginx without autoindex) or the redirect to its slash form,
 * never a listing, and a file whose real path
 * (symlinks followed) is outside the root is 404 unless allow_outside_symlinks.
 * Whole files go out from memory or disk (file-response.ts), as a
 * precompressed FILE.br / FILE.gz sibling when the client takes it, or
 * compressed on the way. Several ranges get one multipart/byteranges 206
 * (file-ranges.ts); other ranges and If-Match / If-Unmodified-Since go to
 * `send`, which does those parts of HTTP on the original file.
 */
import { realpathSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import { join, sep } from 'node:path';
import send from 'send';
import { sendPlain } from '../http/plain-response.js';
import { COMPRESSIONS, type StaticSettings } from '../config/schema.js';
import { compressible, Compression, noTransform, type Coding } from '../http/compression.js';
import { VALID_MS, type CachedFile, type FileCache } from './file-cache.js';
import { cachingHeaders, sendWholeFile, wholeFileResponse, type WholeFile } from './file-response.js';
import { sendRanges } from './file-ranges.js';
import type { Handler, MemoryResponse, RequestHead, RouteRequest } from '../http/handler.js';
import { encodePath } from './redirect.js';

/** What a request gets: a whole file, send's handling of the file, the redirect to the directory's slash form, or an error status. */
type Plan =
  | { kind: 'file'; file: CachedFile; how: WholeFile }
  | { kind: 'send'; file: CachedFile; vary: boolean }
  | { kind: 'slash' }
  | { kind: 'status'; status: number };
/** A decision that needs a path the cache does not hold (see plan). */
type Miss = { kind: 'miss'; path: string };
type Lookup = (path: string) => CachedFile | undefined;
const SLASH: Plan = { kind: 'slash' };
const NOT_FOUND: Plan = { kind: 'status', status: 404 };
const FORBIDDEN: Plan = { kind: 'status', status: 403 };

/** Which precompressed siblings a client takes, best first (whatever `compress` says: they are files of their own). */
const PRECOMPRESSED = new Compression(COMPRESSIONS, 0);
const SIBLING: Record<Coding, string> = { br: '.br', gzip: '.gz' };

export class StaticFiles implements Handler {
  /** The root's real path, with a trailing separator: what every file served must start with. */
  private readonly inside: string;
  private readonly cacheControl: string;
  readonly setsCaching: boolean;
  /** Compression of files that have no sibling; null when off (or no-transform). */
  private readonly compression: Compression | null;

  constructor(
    readonly settings: StaticSettings,
    compression: Compression | null,
    private readonly cache: FileCache,
  ) {
    const real = realpathSync(settings.root);
    this.inside = real.endsWith(sep) ? real : real + sep;
    // send's default (revalidate every time) unless the route says otherwise.
    this.cacheControl = settings.cache_control ?? `public, max-age=${Math.floor(settings.expires ?? 0)}`;
    this.setsCaching = settings.cache_control !== undefined || settings.expires !== undefined;
    this.compression = noTransform(this.cacheControl) ? null : compression;
  }

  serve(r: RouteRequest): void {
    const plan = this.plan(r.req, r.rest);
    if (!(plan instanceof Promise)) return this.carryOut(r, plan);
    plan.then(
      (p) => this.carryOut(r, p),
      (err: Error) => {
        process.emitWarning(err);
        this.plain(r, 500);
      },
    );
  }

  answerFromMemory(head: RequestHead, rest: string): MemoryResponse | null | Promise<MemoryResponse | null> {
    const plan = this.plan(head, rest);
    if (plan instanceof Promise) return plan.then((p) => this.inMemory(head, p));
    const answer = this.inMemory(head, plan);
    // Decided from cache entries alone: as good as the oldest of them.
    if (answer !== null) answer.reuseUntil = this.oldest + VALID_MS;
    return answer;
  }

  private inMemory(head: RequestHead, p: Plan): MemoryResponse | null {
    if (p.kind !== 'file') return null;
    const answer = wholeFileResponse(head, p.file, p.how, this.cache);
    return answer.fromDisk === null ? answer : null;
  }

  private carryOut(r: RouteRequest, p: Plan): void {
    switch (p.kind) {
      case 'file':
        return sendWholeFile(r, p.file, p.how, this.cache);
      case 'send':
        return this.viaSend(r, p.file, p.vary);
      case 'slash':
        return this.redirectToSlash(r);
      case 'status':
        if (p.status === 405) r.res.setHeader('Allow', 'GET, HEAD');
        return this.plain(r, p.status);
    }
  }

  /**
   * What to answer: worked out from the cache alone when it holds every
   * path involved (no promise, nothing allocated for it); else each missing
   * path is loaded and the decision made again.
   */
  private plan(head: RequestHead, rest: string): Plan | Promise<Plan> {
    this.oldest = Infinity;
    const first = this.decide(head, rest, this.cached);
    return first.kind === 'miss' ? this.planLoading(head, rest, first.path) : first;
  }

  /** When the oldest cache entry the last decision from the cache alone looked at was checked. */
  private oldest = Infinity;

  private readonly cached = (path: string) => {
    const entry = this.cache.get(path);
    if (entry !== undefined && entry.checkedAt < this.oldest) this.oldest = entry.checkedAt;
    return entry;
  };

  private async planLoading(head: RequestHead, rest: string, path: string): Promise<Plan> {
    // Kept here too, so a decision never waits on a path twice (and works with static_cache 0).
    const loaded = new Map<string, CachedFile>();
    const lookup = (p: string) => loaded.get(p) ?? this.cache.get(p);
    // Each round loads a path not loaded before; a decision involves a few at most.
    for (;;) {
      loaded.set(path, await this.cache.load(path));
      const p = this.decide(head, rest, lookup);
      if (p.kind !== 'miss') return p;
      path = p.path;
    }
  }

  private decide(head: RequestHead, rest: string, lookup: Lookup): Plan | Miss {
    if (head.method !== 'GET' && head.method !== 'HEAD') return { kind: 'status', status: 405 };
    if (rest === '') return SLASH;
    // The router decoded the path to bytes; file names are UTF-8.
    const path = Buffer.from(rest, 'latin1').toString('utf8');
    if (path.includes('/.') || path.includes('\0')) return NOT_FOUND;
    const full = join(this.settings.root, path);
    const f = lookup(full);
    if (f === undefined) return { kind: 'miss', path: full };
    if (f.kind === 'denied') return FORBIDDEN;
    if (f.kind === 'error') return { kind: 'status', status: 500 };
    if (f.kind === 'missing' || f.kind === 'other' || !this.allowed(f)) return NOT_FOUND;
    if (f.kind === 'file') return path.endsWith('/') ? NOT_FOUND : this.decideFile(head, f, lookup);
    if (!path.endsWith('/')) return SLASH;
    // A directory URL: the first index file that exists, else 403, as nginx answers when it may not list it.
    for (const name of this.settings.index) {
      const index = join(full, name);
      const g = lookup(index);
      if (g === undefined) return { kind: 'miss', path: index };
      if (g.kind === 'file' && this.allowed(g)) return this.decideFile(head, g, lookup);
    }
    return FORBIDDEN;
  }

  /** Symlinks are followed, but only to files inside the root unless the route allows more. */
  private allowed(f: CachedFile): boolean {
    return this.settings.allow_outside_symlinks || f.real.startsWith(this.inside) || f.real + sep === this.inside;
  }

  /** The file itself or its first precompressed sibling the client takes; ranges and the rarer preconditions go to send. */
  private decideFile(head: RequestHead, f: CachedFile, lookup: Lookup): Plan | Miss {
    const h = head.headers;
    const z = this.compression;
    const vary = z !== null && f.stats!.size >= z.minSize && compressible(f.type);
    if (h.range !== undefined || h['if-match'] !== undefined || h['if-unmodified-since'] !== undefined) return { kind: 'send', file: f, vary };
    if (this.settings.precompressed) {
      for (const coding of PRECOMPRESSED.accepted(head)) {
        const sibling = f.path + SIBLING[coding];
        const s = lookup(sibling);
        if (s === undefined) return { kind: 'miss', path: sibling };
        if (s.kind === 'file' && this.allowed(s)) return { kind: 'file', file: s, how: this.how(f, true, coding, true) };
      }
    }
    const dynamic = vary ? this.compression!.choose(head) : null;
    return { kind: 'file', file: f, how: this.how(f, vary, dynamic, false) };
  }

  private how(f: CachedFile, vary: boolean, coding: Coding | null, precompressed: boolean): WholeFile {
    return { type: f.type, cacheControl: this.cacheControl, expires: this.settings.expires, vary, coding, precompressed };
  }

  /** Ranges and the rarer preconditions: send does them, on the original file, with our headers. */
  private viaSend(r: RouteRequest, f: CachedFile, vary: boolean): void {
    const caching = cachingHeaders({ cacheControl: this.cacheControl, expires: this.settings.expires, vary });
    if (sendRanges(r, f, caching)) return;
    const { req, res } = r;
    res.once('finish', () => {
      const length = Number(res.getHeader('content-length') ?? 0);
      r.log(res.statusCode, req.method === 'HEAD' || res.statusCode === 304 ? 0 : length);
    });
    // send wants the path below its root percent-encoded, and decodes it as UTF-8.
    const below = Buffer.from(f.path.slice(this.settings.root.length), 'utf8').toString('latin1');
    const stream = send(req, encodePath(below), { root: this.settings.root, dotfiles: 'ignore', index: false, cacheControl: false });
    stream.on('headers', () => {
      for (const [name, value] of Object.entries(caching)) {
        res.setHeader(name, value!);
      }
    });
    // The file went away or changed kind since the lookup; send's 403 (a `..`) is a 404 here too.
    stream.on('error', (e: { status?: number }) => this.plain(r, e.status === 403 ? 404 : (e.status ?? 500), false));
    stream.on('directory', () => this.plain(r, 404, false));
    stream.pipe(res);
  }

  /** A directory asked for without its trailing slash: 301 to the slash form, query kept. */
  private redirectToSlash(r: RouteRequest): void {
    const url = r.req.url ?? '/';
    const q = url.indexOf('?');
    const location = q < 0 ? `${url}/` : `${url.slice(0, q)}/${url.slice(q)}`;
    r.res.setHeader('Location', location);
    r.log(301, sendPlain(r.res, 301, `Moved Permanently: ${location}`, false));
  }

  private plain(r: RouteRequest, status: number, log = true): void {
    if (r.res.headersSent) return void r.res.destroy();
    const bytes = sendPlain(r.res, status, STATUS_CODES[status] ?? 'Error', false);
    if (log) r.log(status, bytes);
  }
}
