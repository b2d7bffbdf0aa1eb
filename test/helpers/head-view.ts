/**
 * What gatehouse does with a request once it is read, whoever read it, as
 * pure functions: viewOf, what the app sees of a request that llhttp parsed
 * (PEP 3333's environ, built as src/wsgi/environ.ts documents it), and
 * refusalOf, the status gatehouse refuses it with after reading it (a `..`
 * path, an unsupported Transfer-Encoding...). The reference server
 * (head-exchange.ts) applies them to what node:http parsed, so that both
 * sides differ only in the reading.
 */
import { parseTarget } from '../../src/http/request-target.js';
import type { AppView, Parsed } from './head-outcome.js';

/** Headers a proxy sets about the client: with no trusted proxy (these tests) environ.ts drops them. */
const PROXY_HEADER = /^(?:x-forwarded-[a-z0-9-]+|forwarded|x-real-ip)$/i;

/** The largest declared body gatehouse takes by default (max_request_body 100m). */
const MAX_BODY = 100 * 1024 * 1024;

/** The request's Transfer-Encoding headers, joined as environ.ts joins them. */
function transferEncoding(p: Parsed): string | undefined {
  let te: string | undefined;
  for (let i = 0; i < p.rawHeaders.length; i += 2) {
    if (p.rawHeaders[i]!.toLowerCase() === 'transfer-encoding') te = te === undefined ? p.rawHeaders[i + 1]! : `${te}, ${p.rawHeaders[i + 1]!}`;
  }
  return te;
}

function contentLength(p: Parsed): string | undefined {
  let cl: string | undefined;
  for (let i = 0; i < p.rawHeaders.length; i += 2) if (p.rawHeaders[i]!.toLowerCase() === 'content-length') cl = p.rawHeaders[i + 1]!;
  return cl;
}

/**
 * The status gatehouse refuses a request with once it is read, whoever read
 * it (http-front.ts's onRequest, wsgi-app.ts): `beforeContinue` when it is
 * refused before a `100 Continue` would be sent. Null: the app gets it.
 */
export function refusalOf(p: Parsed): { status: number; beforeContinue: boolean } | null {
  const fault = framingFault(p);
  if (fault !== 0) return { status: fault, beforeContinue: true };
  if (parseTarget(p.url) === null) return { status: 400, beforeContinue: true };
  const cl = contentLength(p);
  if (cl !== undefined && Number(cl) > MAX_BODY) return { status: 413, beforeContinue: true };
  const te = transferEncoding(p);
  if (te !== undefined && te.trim().toLowerCase() !== 'chunked') return { status: 501, beforeContinue: false };
  return null;
}

/** RFC 9112's framing faults llhttp lets through (http-front.ts's framingFault): HTTP/0.9 (400), version 2+ (505), Transfer-Encoding in HTTP/1.0, two Hosts (400); 0: none. */
function framingFault(p: Parsed): number {
  if (!p.httpVersion.startsWith('1.')) return p.httpVersion === '0.9' ? 400 : 505;
  if (p.httpVersion === '1.0' && transferEncoding(p) !== undefined) return 400;
  let hosts = 0;
  for (let i = 0; i < p.rawHeaders.length; i += 2) if (p.rawHeaders[i]!.toLowerCase() === 'host') hosts++;
  return hosts > 1 ? 400 : 0;
}

/** What the app sees of a request llhttp parsed with this body (environ.ts's rules; no trusted proxy). */
export function viewOf(p: Parsed, body: Buffer): AppView {
  const target = parseTarget(p.url)!;
  const headers: Record<string, string> = {};
  let contentType: string | null = null;
  let bodyHeader = false;
  for (let i = 0; i < p.rawHeaders.length; i += 2) {
    const raw = p.rawHeaders[i]!;
    const value = p.rawHeaders[i + 1]!;
    const lower = raw.toLowerCase();
    if (raw.includes('_') || PROXY_HEADER.test(raw)) continue;
    if (lower === 'content-length' || lower === 'transfer-encoding') {
      bodyHeader = true;
      continue;
    }
    if (lower === 'content-type') {
      contentType = contentType === null ? value : `${contentType}, ${value}`;
      continue;
    }
    const key = 'HTTP_' + raw.toUpperCase().replace(/-/g, '_');
    headers[key] = headers[key] === undefined ? value : headers[key] + (key === 'HTTP_COOKIE' ? '; ' : ', ') + value;
  }
  const authority = authorityOf(p.url);
  if (authority !== '') headers.HTTP_HOST = authority;
  return {
    method: p.method,
    target: p.url,
    path: target.path,
    query: target.query,
    protocol: `HTTP/${p.httpVersion}`,
    headers,
    content_type: contentType,
    content_length: bodyHeader ? String(body.length) : null,
    body: body.toString('latin1'),
  };
}

/** An absolute-form target's host (userinfo dropped), which stands for the Host header (RFC 9112 §3.2.2); '' for another form. */
function authorityOf(url: string): string {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(url);
  return m === null ? '' : m[1]!.slice(m[1]!.indexOf('@') + 1);
}
