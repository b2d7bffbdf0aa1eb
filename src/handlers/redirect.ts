/**
 * The `redirect` action (nginx's `return 301 URL`): answers with a Location
 * built from the route's template. `$scheme`, `$host`, `$request_uri` (path
 * and query as sent) and `$path` (the path below the route's prefix, as sent)
 * are replaced.
 */
import type { Handler, RouteRequest } from '../http/handler.js';
import { sendPlain } from '../http/plain-response.js';

export class Redirect implements Handler {
  constructor(private readonly status: number, private readonly location: string) {}

  serve(r: RouteRequest): void {
    const uri = r.req.url ?? '/';
    const location = this.location.replace(/\$(scheme|host|request_uri|path)\b/g, (_, name: string) => {
      if (name === 'scheme') return r.scheme;
      if (name === 'host') return r.req.headers.host ?? r.host;
      if (name === 'request_uri') return uri;
      return encodePath(r.rest) + (r.query ? `?${r.query}` : '');
    });
    r.res.setHeader('Location', location);
    r.log(this.status, sendPlain(r.res, this.status, `Redirecting to ${location}`, false));
  }
}

/** A latin-1 ("bytes in a str") path back to its percent-encoded URL form. */
export function encodePath(path: string): string {
  return path.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}
