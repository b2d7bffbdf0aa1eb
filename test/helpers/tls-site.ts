/**
 * What the TLS and HTTP/2 test files share (test/tls-listeners.test.ts,
 * tls-reload, http2-responses, http2-sessions): self-signed certificates,
 * made with openssl in a temp dir before a file's tests (tests skip when
 * openssl, or curl, h2load, is missing), and, for the files that ask for
 * them, two servers: `site`, from a config file (SNI, tls_min_version,
 * http2 = false, redirect_https, static files, an app and a return route),
 * and `simple`, --certfile/--keyfile on two --bind addresses.
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS, hasCommand } from './gatehouse.js';
import { launch, type Server } from './launch.js';

const HAS_OPENSSL = hasCommand('openssl');
export const NO_OPENSSL = HAS_OPENSSL ? false : 'openssl is not installed (Debian: openssl)';
export const NO_CURL = !HAS_OPENSSL ? NO_OPENSSL : hasCommand('curl') ? false : 'curl is not installed';
export const NO_H2LOAD = !HAS_OPENSSL ? NO_OPENSSL : hasCommand('h2load') ? false : 'h2load is not installed (Debian: nghttp2-client)';

export const ECHO = `${APPS}/http_apps.py:app`;
export const ENVIRON = `${APPS}/basic.py:echo_environ`;
export const CASES = `${APPS}/wsgi_cases.py:dispatch`;
export const CSS = 'body { color: green; }\n';

export let tmp = '';
export let accessLog = '';
/** The config-file server: [0] TLS with SNI, [1] TLS 1.3 only without HTTP/2, [2] plain redirect_https = 8443. */
export let site: Server | null = null;
/** `--certfile/--keyfile` on two --bind addresses, the environ app. */
export let simple: Server | null = null;

export function cert(name: string): string {
  return join(tmp, `${name}.crt`);
}
export function key(name: string): string {
  return join(tmp, `${name}.key`);
}

/** A self-signed certificate `name.crt` / `name.key`; `san` null leaves only the CN. */
function makeCertificate(name: string, cn: string, san: string | null): void {
  const args = ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key(name), '-out', cert(name), '-days', '2', '-subj', `/CN=${cn}`];
  if (san !== null) args.push('-addext', `subjectAltName=${san}`);
  const made = spawnSync('openssl', args, { encoding: 'utf8' });
  assert.equal(made.status, 0, `openssl ${args.join(' ')}: ${made.stderr}`);
}

/** The certificates, the public/ files and site.toml in a new temp dir, and the servers asked for. */
async function makeSite(servers: { site?: boolean; simple?: boolean }): Promise<void> {
  if (!HAS_OPENSSL) return;
  tmp = mkdtempSync(join(tmpdir(), 'gh-tls-'));
  accessLog = join(tmp, 'access.log');
  makeCertificate('a', 'a.test', 'DNS:a.test,DNS:*.a.test');
  makeCertificate('b', 'b.test', 'DNS:b.test');
  makeCertificate('c', 'c.test', null);
  makeCertificate('d', 'd.test', 'DNS:d.test');
  // b.test renewed: the same names, another certificate.
  makeCertificate('b2', 'b.test', 'DNS:b.test');
  mkdirSync(join(tmp, 'public'));
  writeFileSync(join(tmp, 'public', 'style.css'), CSS);
  writeFileSync(join(tmp, 'public', 'blob.bin'), randomBytes(300_000));
  mkdirSync(join(tmp, 'public', 'no-index'));
  writeFileSync(
    join(tmp, 'site.toml'),
    `access_log = "${accessLog}"
max_request_body = "1m"

[[listeners]]
bind = "127.0.0.1:0"
certificates = [
  { certfile = "a.crt", keyfile = "a.key" },
  { certfile = "b.crt", keyfile = "b.key" },
  { certfile = "c.crt", keyfile = "c.key" },
  { certfile = "d.crt", keyfile = "d.key", hosts = ["*.wild.test"] },
]

[[listeners]]
bind = "127.0.0.1:0"
certfile = "b.crt"
keyfile = "b.key"
tls_min_version = "1.3"
http2 = false

[[listeners]]
bind = "127.0.0.1:0"
redirect_https = 8443

[apps.echo]
app = "${ECHO}"
workers = 2

[apps.cases]
app = "${CASES}"
workers = 1

[[routes]]
host = "a.test"
path = "/site"
return = { status = 200, body = "site a" }

[[routes]]
host = "b.test"
path = "/site"
return = { status = 200, body = "site b" }

[[routes]]
path = "/static"
static = { root = "public" }

[[routes]]
path = "/go"
redirect = { status = 302, location = "$scheme://$host/elsewhere$path" }

[[routes]]
path = "/cases"
app = "cases"

[[routes]]
path = "/"
app = "echo"
`,
  );
  [site, simple] = await Promise.all([
    servers.site === true ? launch(['--config', join(tmp, 'site.toml')], { workers: 3 }) : null,
    servers.simple === true ? launch(['--bind', '127.0.0.1:0', '--bind', '127.0.0.1:0', '--certfile', cert('a'), '--keyfile', key('a'), ENVIRON]) : null,
  ]);
}

/** Makes the site (makeSite) before the tests of the file that calls it; stops its servers and removes it after them. */
export function serveTlsSite(servers: { site?: boolean; simple?: boolean } = {}): void {
  before(() => makeSite(servers));
  after(async () => {
    await Promise.all([site?.kill(), simple?.kill()]);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });
}

export function portOf(server: Server, index: number): number {
  return Number(/:(\d+)$/.exec(server.addresses[index]!)![1]);
}

/** The lines of the site's access log so far. */
export function accessLines(): string[] {
  try {
    return readFileSync(accessLog, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}
