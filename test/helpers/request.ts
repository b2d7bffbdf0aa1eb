/** One HTTP request through node:http on a fresh connection, its answer read whole. */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';

export interface SimpleResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** The body's bytes as they came over the wire (still compressed, if they were). */
  raw: Buffer;
  /** ms from sending the request to the end of the response */
  ms: number;
}

/**
 * One request on a fresh connection (no agent pooling). `target` is a base URL
 * (`http://127.0.0.1:8000`) or `{ socketPath }` for a unix socket; `localAddress`
 * is the client's source address (any 127.x.y.z is this machine's).
 */
export function request(
  target: string | { socketPath: string },
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; timeoutMs?: number; localAddress?: string } = {},
): Promise<SimpleResponse> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const base =
      typeof target === 'string'
        ? (() => {
            const u = new URL(target);
            return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) };
          })()
        : { socketPath: target.socketPath };
    const req = httpRequest({ ...base, path, method: opts.method ?? 'GET', headers: opts.headers, localAddress: opts.localAddress, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: raw.toString(), raw, ms: Date.now() - started });
      });
    });
    req.setTimeout(opts.timeoutMs ?? 10000, () => req.destroy(new Error(`no answer to ${path} within ${opts.timeoutMs ?? 10000} ms`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}
