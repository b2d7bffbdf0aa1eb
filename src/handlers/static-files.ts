/**
 * The `static` action and `--static URL=DIR`: files served by the front itself (nginx's
 * `location /static/ { alias DIR/; }`), never reaching Python.
 *
 * `send` does the HTTP part: ETag / Last-Modified and 304, Range / 206 / 416,
 * HEAD, MIME types, index.html, the redirect of a directory to its slash
 * form, and refusing `..` (also percent-encoded). It follows symlinks, so a
 * link inside DIR pointing outside it is checked here and answered 404.
 * Dotfiles are never served (404), nor directory listings.
 */
import { realpath, realpathSync } from 'node:fs';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { isAbsolute, join, relative } from 'node:path';
import send from 'send';
import { sendPlain } from '../front/plain-response.js';
import type { StaticSettings } from '../config/schema.js';
import type { Handler, RouteRequest } from './handler.js';
import { encodePath } from './redirect.js';

export class StaticFiles implements Handler {
  private readonly realRoot: string;

  constructor(readonly settings: StaticSettings) {
    this.realRoot = realpathSync(settings.root);
  }

  serve(r: RouteRequest): void {
    const { req, res } = r;
    res.once('finish', () => {
      const length = Number(res.getHeader('content-length') ?? 0);
      r.log(res.statusCode, req.method === 'HEAD' || res.statusCode === 304 ? 0 : length);
    });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return this.plain(res, 405);
    }
    if (r.rest === '') return this.redirectToSlash(req, res);
    // The router decoded the path to bytes; send wants it encoded, and decodes it as UTF-8.
    const rest = encodePath(r.rest);
    const decoded = Buffer.from(r.rest, 'latin1').toString('utf8');
    // The file send would serve (the index for a directory): it must really be inside the root.
    const target = join(this.settings.root, decoded.endsWith('/') ? decoded + this.settings.index[0] : decoded);
    realpath(target, (err, real) => {
      if (!err && !this.settings.allow_outside_symlinks && !this.inside(real)) return this.plain(res, 404);
      const stream = send(req, rest, { root: this.settings.root, dotfiles: 'ignore', index: this.settings.index });
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
