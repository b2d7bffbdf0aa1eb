/**
 * What the two X-Accel test files share (test/accel-redirect.test.ts,
 * test/accel-headers.test.ts): a site with a WSGI and an ASGI app of one
 * Python file, a plain listener and, where openssl is installed, a TLS one;
 * the plain HTTP upstream of its proxy routes and the second gatehouse behind
 * its uwsgi and SCGI routes; and their stop.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { createServer, type RequestListener, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { hasCommand, SYSTEM_PYTHON } from './gatehouse.js';
import { launchConfig, type Server } from './launch.js';

export const HAS_OPENSSL = hasCommand('openssl');

/** The `host:port` a server says it listens at for `scheme` (its start-up line). */
export function listening(s: Server, scheme: string): string {
  return new RegExp(`Listening at: ${scheme}://(\\S+) \\(`).exec(s.output())![1]!;
}

/**
 * The site's TOML: `settings` (top-level keys), the listeners, the apps
 * `wsgi` (`APP:application`) and `asgi` (`APP:asgi_app`) at /app and
 * /asgi, then `routes`. With openssl, a self-signed certificate is made in
 * `dir` for the TLS listener.
 */
export function accelSite(dir: string, app: string, settings: string, routes: string): string {
  let tls = '';
  if (HAS_OPENSSL) {
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=localhost']);
    assert.equal(made.status, 0, made.stderr.toString());
    tls = '\n[[listeners]]\nbind = "127.0.0.1:0"\ncertfile = "cert.pem"\nkeyfile = "key.pem"\n';
  }
  return `python = "${SYSTEM_PYTHON}"
# On, so that both ways an app's head is read are tried: its bytes as they are (small bodies), decoded (HEAD).
compress = ["gzip"]
${settings}

[[listeners]]
bind = "127.0.0.1:0"
${tls}
[apps.wsgi]
app = "${app}:application"

[apps.asgi]
app = "${app}:asgi_app"

[[routes]]
path = "/app"
app = "wsgi"

[[routes]]
path = "/asgi"
app = "asgi"
${routes}`;
}

/** A plain HTTP server on a loopback port answering with `handler`, and that port. */
export async function startUpstream(handler: RequestListener): Promise<{ upstream: HttpServer; port: number }> {
  const upstream = createServer(handler);
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  return { upstream, port: (upstream.address() as AddressInfo).port };
}

/** A second gatehouse in `dir` (made here) serving `app`'s `application` on one listener per protocol (`uwsgi`, `scgi`). */
export function launchBackend(dir: string, app: string, protocols: readonly string[]): Promise<Server> {
  mkdirSync(dir);
  const listeners = protocols.map((p) => `\n[[listeners]]\nbind = "127.0.0.1:0"\nprotocol = "${p}"\n`).join('');
  return launchConfig(dir, `workers = 1\npython = "${SYSTEM_PYTHON}"\napp = "${app}:application"\n${listeners}`, 1);
}

/** Stops the site, its back end and its upstream (what of them started), and removes `dir`. */
export async function stopSite(dir: string, server: Server | undefined, backend: Server | undefined, upstream: HttpServer | undefined): Promise<void> {
  await server?.kill();
  await backend?.kill();
  await new Promise((resolve) => upstream?.close(resolve) ?? resolve(undefined));
  rmSync(dir, { recursive: true, force: true });
}
