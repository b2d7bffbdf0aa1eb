/**
 * `--static URL=DIR`: files served by the front itself (nginx's
 * `location /static/ { alias DIR/; }`), never reaching Python.
 *
 * `send` does the HTTP part: ETag / Last-Modified and 304, Range / 206 / 416,
 * HEAD, MIME types, index.html, the redirect of a directory to its slash
 * form, and refusing `..` (also percent-encoded). It follows symlinks, so a
 * link inside DIR pointing outside it is checked here and answered 404.
 * Dotfiles are never served (404), nor directory listings.
 */
import { existsSync, realpath, realpathSync, statSync } from 'node:fs';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { isAbsolute, join, relative, resolve } from 'node:path';
import send from 'send';
import { sendPlain } from '../front/plain-response.js';

export interface StaticRoute {
  /** URL prefix, e.g. `/static` (no trailing slash, except `/` itself). */
  prefix: string;
  root: string;
}

/** Parses `URL=DIR`; returns a problem to report for --static otherwise. */
export function parseStaticRoute(text: string): { route?: StaticRoute; problem?: string } {
  const eq = text.indexOf('=');
  if (eq < 0) return { problem: 'expected URL=DIR, e.g. /static=./static' };
  const prefix = text.slice(0, eq).replace(/\/+$/, '') || '/';
  if (!prefix.startsWith('/')) return { problem: 'the URL part must start with /' };
  const dir = text.slice(eq + 1);
  if (dir === '') return { problem: 'the DIR part is empty (it would serve the current directory)' };
  const root = resolve(dir);
  if (!existsSync(root)) return { problem: `directory ${dir} does not exist` };
  if (!statSync(root).isDirectory()) return { problem: `${dir} is not a directory` };
  return { route: { prefix, root } };
}

export class StaticFiles {
  private readonly realRoot: string;

  constructor(readonly route: StaticRoute) {
    this.realRoot = realpathSync(route.root);
  }

  /** The path below the prefix ('' for the prefix itself, else starting with '/'), or null when `path` is not under this route. */
  match(path: string): string | null {
    const { prefix } = this.route;
    if (prefix === '/') return path;
    if (!path.startsWith(prefix)) return null;
    const rest = path.slice(prefix.length);
    return rest === '' || rest.charCodeAt(0) === 47 /* '/' */ ? rest : null;
  }

  /** Answers the request; `done` gets the status and body bytes for the access log. */
  serve(req: IncomingMessage, res: ServerResponse, rest: string, done: (status: number, bytes: number) => void): void {
    res.once('finish', () => {
      const length = Number(res.getHeader('content-length') ?? 0);
      done(res.statusCode, req.method === 'HEAD' || res.statusCode === 304 ? 0 : length);
    });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return this.plain(res, 405);
    }
    if (rest === '') return this.redirectToSlash(req, res);
    let decoded: string;
    try {
      decoded = decodeURIComponent(rest);
    } catch {
      return this.plain(res, 400);
    }
    if (decoded.includes('\0')) return this.plain(res, 400);
    // The file send would serve (the index for a directory): it must really be inside the root.
    const target = join(this.route.root, decoded.endsWith('/') ? decoded + 'index.html' : decoded);
    realpath(target, (err, real) => {
      if (!err && !this.inside(real)) return this.plain(res, 404);
      const stream = send(req, rest, { root: this.route.root, dotfiles: 'ignore', index: ['index.html'] });
      // send answers 403 for `..`; like a file that is not there, it gets 404.
      stream.on('error', (e: { status?: number }) => this.plain(res, e.status === 403 ? 404 : (e.status ?? 500)));
      // send would redirect to its own path, which lacks our prefix.
      stream.on('directory', () => this.redirectToSlash(req, res));
      stream.pipe(res);
    });
  }

  /** A directory asked for without its trailing slash: 301 to the slash form, query kept. */
  private redirectToSlash(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const location = q < 0 ? `${url}/` : `${url.slice(0, q)}/${url.slice(q)}`;
    res.setHeader('Location', location);
    sendPlain(res, 301, `Moved Permanently: ${location}`, false);
  }

  private inside(path: string): boolean {
    const rel = relative(this.realRoot, path);
    return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
  }

  private plain(res: ServerResponse, status: number): void {
    if (res.headersSent) res.destroy();
    else sendPlain(res, status, STATUS_CODES[status] ?? 'Error', false);
  }
}
