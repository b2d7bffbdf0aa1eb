/**
 * The `static` action and `--static URL=DIR`: files served by the front itself (nginx's
 * `location /static/ { alias DIR/; }`), never reaching Python.
 *
 * Paths are resolved here, through the file cache: dotfiles (and so `..`)
 * are 404, a directory gets the first of its `index` files that exists or the
 * redirect to its slash form, never a listing, and a file whose real path
 * (symlinks followed) is outside the root is 404 unless allow_outside_symlinks.
 * Whole files go out from memory or disk (file-response.ts), as a
 * precompressed FILE.br / FILE.gz sibling when the client takes it, or
 * compressed on the way. Ranges and If-Match / If-Unmodified-Since go to
 * `send`, which does those parts of HTTP on the original file.
 */
import { realpathSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import { join, sep } from 'node:path';
import send from 'send';
import { sendPlain } from '../front/plain-response.js';
import { COMPRESSIONS, type StaticSettings } from '../config/schema.js';
import { compressible, Compression, noTransform, type Coding } from '../front/compression.js';
import type { CachedFile, FileCache } from './file-cache.js';
import { cachingHeaders, sendWholeFile } from './file-response.js';
import type { Handler, RouteRequest } from './handler.js';
import { encodePath } from './redirect.js';

/** Which precompressed siblings a client takes, best first (whatever `compress` says: they are files of their own). */
const PRECOMPRESSED = new Compression(COMPRESSIONS, 0);
const SIBLING: Record<Coding, string> = { br: '.br', gzip: '.gz' };

export class StaticFiles implements Handler {
  /** The root's real path, with a trailing separator: what every file served must start with. */
  private readonly inside: string;
  private readonly cacheControl: string;
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
    this.compression = noTransform(this.cacheControl) ? null : compression;
  }

  serve(r: RouteRequest): void {
    const { req, res } = r;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return this.plain(r, 405);
    }
    if (r.rest === '') return this.redirectToSlash(r);
    // The router decoded the path to bytes; file names are UTF-8.
    const path = Buffer.from(r.rest, 'latin1').toString('utf8');
    if (path.includes('/.') || path.includes('\0')) return this.plain(r, 404);
    const dirUrl = path.endsWith('/');
    this.lookup(r, join(this.settings.root, path), (f) => {
      if (f.kind === 'denied') return this.plain(r, 403);
      if (f.kind === 'error') return this.plain(r, 500);
      if (f.kind === 'missing' || f.kind === 'other' || !this.allowed(f)) return this.plain(r, 404);
      if (f.kind === 'file') return dirUrl ? this.plain(r, 404) : this.file(r, f);
      if (!dirUrl) return this.redirectToSlash(r);
      this.index(r, f.path, 0);
    });
  }

  private lookup(r: RouteRequest, path: string, then: (f: CachedFile) => void): void {
    const hit = this.cache.get(path);
    if (hit !== undefined) return then(hit);
    this.cache
      .load(path)
      .then(then)
      .catch((err: Error) => {
        process.emitWarning(err);
        this.plain(r, 500);
      });
  }

  /** Symlinks are followed, but only to files inside the root unless the route allows more. */
  private allowed(f: CachedFile): boolean {
    return this.settings.allow_outside_symlinks || f.real.startsWith(this.inside) || f.real + sep === this.inside;
  }

  /** A directory URL: the first index file that exists, else 404 (no listings). */
  private index(r: RouteRequest, dir: string, i: number): void {
    const name = this.settings.index[i];
    if (name === undefined) return this.plain(r, 404);
    this.lookup(r, join(dir, name), (f) => (f.kind === 'file' && this.allowed(f) ? this.file(r, f) : this.index(r, dir, i + 1)));
  }

  private file(r: RouteRequest, f: CachedFile): void {
    const h = r.req.headers;
    const z = this.compression;
    const vary = z !== null && f.stats!.size >= z.minSize && compressible(f.type);
    if (h.range !== undefined || h['if-match'] !== undefined || h['if-unmodified-since'] !== undefined) return this.viaSend(r, f, vary);
    const codings = this.settings.precompressed ? PRECOMPRESSED.accepted(r.req) : [];
    this.sibling(r, f, codings, 0, vary);
  }

  /** Serves the first precompressed sibling the client takes, else the file itself. */
  private sibling(r: RouteRequest, f: CachedFile, codings: readonly Coding[], i: number, vary: boolean): void {
    const coding = codings[i];
    if (coding === undefined) {
      const dynamic = vary ? this.compression!.choose(r.req) : null;
      return sendWholeFile(r, f, this.how(f, vary, dynamic, false), this.cache);
    }
    this.lookup(r, f.path + SIBLING[coding], (s) => {
      if (s.kind === 'file' && this.allowed(s)) sendWholeFile(r, s, this.how(f, true, coding, true), this.cache);
      else this.sibling(r, f, codings, i + 1, vary);
    });
  }

  private how(f: CachedFile, vary: boolean, coding: Coding | null, precompressed: boolean) {
    return { type: f.type, cacheControl: this.cacheControl, expires: this.settings.expires, vary, coding, precompressed };
  }

  /** Ranges and the rarer preconditions: send does them, on the original file, with our headers. */
  private viaSend(r: RouteRequest, f: CachedFile, vary: boolean): void {
    const { req, res } = r;
    res.once('finish', () => {
      const length = Number(res.getHeader('content-length') ?? 0);
      r.log(res.statusCode, req.method === 'HEAD' || res.statusCode === 304 ? 0 : length);
    });
    // send wants the path below its root percent-encoded, and decodes it as UTF-8.
    const below = Buffer.from(f.path.slice(this.settings.root.length), 'utf8').toString('latin1');
    const stream = send(req, encodePath(below), { root: this.settings.root, dotfiles: 'ignore', index: false, cacheControl: false });
    stream.on('headers', () => {
      for (const [name, value] of Object.entries(cachingHeaders({ cacheControl: this.cacheControl, expires: this.settings.expires, vary }))) {
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
