/**
 * nginx's `X-Accel-Redirect`, as the route actions that relay an app's or a
 * back end's answer (app, proxy, fastcgi, scgi, uwsgi) read it: a response
 * head with this header is never sent; its body is dropped and the front
 * routes the request again to the URI it names (front/internal-redirect.ts).
 * Apps written for nginx (django-sendfile2, django-private-storage, Flask
 * downloads) hand protected files to the front this way.
 *
 * From that first head only the headers nginx copies on such a redirect
 * (ngx_http_upstream's `redirect` headers) reach the client, over the final
 * answer's own: Content-Type, Content-Disposition, Accept-Ranges,
 * Set-Cookie, Cache-Control and Expires.
 */
export const ACCEL_REDIRECT = 'x-accel-redirect';

/** The headers of the redirecting head kept for the final answer (lower case). */
export const KEPT_HEADERS: ReadonlySet<string> = new Set(['content-type', 'content-disposition', 'accept-ranges', 'set-cookie', 'cache-control', 'expires']);

/** What a head with X-Accel-Redirect asks for. */
export interface AccelRedirect {
  /** The header's value as sent: a path, maybe percent-encoded, maybe with a query. */
  target: string;
  /** The kept headers of that head, `[name, value, ...]`. */
  kept: string[];
}

/** The redirect a head asks for, `at` its X-Accel-Redirect name (accel-headers.ts finds it). */
export function accelRedirect(flat: readonly string[], from: number, at: number): AccelRedirect {
  const kept: string[] = [];
  for (let i = from; i + 1 < flat.length; i += 2) if (KEPT_HEADERS.has(flat[i]!.toLowerCase())) kept.push(flat[i]!, flat[i + 1]!);
  return { target: flat[at + 1]!.trim(), kept };
}
