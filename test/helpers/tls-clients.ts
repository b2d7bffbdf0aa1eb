/**
 * Clients for the TLS and HTTP/2 tests: an HTTP/2 session and its requests
 * (self-signed certificates accepted), a TLS handshake that says what the
 * server presented, and a command (curl, h2load) run to completion.
 */
import { execFile } from 'node:child_process';
import { connect as h2connect, constants as h2, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

/**
 * An HTTP/2 session to 127.0.0.1:port (self-signed certificates accepted);
 * `servername` is sent by SNI and is the requests' :authority (Node's client does that).
 */
export function h2session(port: number, servername?: string): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = h2connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, ...(servername === undefined ? {} : { servername }) });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

export interface H2Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request on `session`; rejects when the stream fails or takes more than 15 s. */
export function h2request(session: ClientHttp2Session, path: string, opts: { method?: string; headers?: OutgoingHttpHeaders; body?: Buffer | string } = {}): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, ':method': opts.method ?? 'GET', ...opts.headers }, { endStream: opts.body === undefined });
    const timer = setTimeout(() => stream.close(h2.NGHTTP2_CANCEL), 15_000);
    let status = 0;
    let headers: H2Response['headers'] = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      status = Number(h[':status']);
      headers = h;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    stream.on('end', () => {
      clearTimeout(timer);
      resolve({ status, headers, body: Buffer.concat(chunks) });
    });
    if (opts.body !== undefined) stream.end(opts.body);
  });
}

/** `promise`, or a rejection naming `what` after `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function h2close(session: ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => session.close(() => resolve()));
}

export function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

/** The certificate (CN, SHA-256 fingerprint) and the TLS version a handshake with `servername` ends with. */
export function handshake(port: number, opts: ConnectionOptions = {}): Promise<{ cn: string; fingerprint: string; protocol: string | null; alpn: string | false }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts }, () => {
      const peer = socket.getPeerCertificate();
      const cn = peer.subject.CN;
      resolve({ cn: Array.isArray(cn) ? cn.join(',') : (cn ?? ''), fingerprint: peer.fingerprint256, protocol: socket.getProtocol(), alpn: socket.alpnProtocol ?? false });
      socket.end();
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error('handshake timed out')));
    socket.on('error', reject);
  });
}
