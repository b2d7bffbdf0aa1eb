/**
 * TLS for a listener: its certificates and the oldest protocol version it
 * accepts, as node:tls server options, and their reload (SIGHUP, as
 * `nginx -s reload`: a renewed certificate is served without a restart).
 *
 * With several certificates the name the client asks for (SNI) picks one:
 * an exact name first, then a `*.example.com` wildcard (one label deep, as
 * certificate names match), else the default: the first certificate, or the
 * one whose hosts include `*`. Clients that send no name get the default.
 * A certificate's names are its `hosts`, or else the DNS names of its
 * subjectAltName (its subject's CN when it has none), so the common case
 * needs no `hosts` at all.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext, type Server as TlsServer, type TlsOptions } from 'node:tls';
import { GatehouseError } from '../errors.js';
import type { ListenerSettings } from '../config/schema.js';

type MinVersion = 'TLSv1.2' | 'TLSv1.3';

interface LoadedCertificate {
  cert: Buffer;
  key: Buffer;
  hosts: readonly string[];
  /** For SNI; building it also proves the key goes with the certificate. */
  context: SecureContext;
}

/** True when the listener serves TLS. */
export function isTls(listener: ListenerSettings): boolean {
  return listener.certfile !== undefined || (listener.certificates?.length ?? 0) > 0;
}

/** The DNS names a certificate (PEM, leaf first) is valid for, lower case. */
export function certificateNames(pem: Buffer): string[] {
  const x509 = new X509Certificate(pem);
  const dns = (x509.subjectAltName ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice(4).toLowerCase());
  if (dns.length > 0) return dns;
  const cn = /^CN=(.+)$/m.exec(x509.subject)?.[1];
  return cn === undefined ? [] : [cn.toLowerCase()];
}

function read(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    // The schema checked the file; it went away (or lost its permissions) since.
    throw new GatehouseError('GH_ERR_CONFIG', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** One certificate and its key, read and checked; the error names the file at fault. */
function loadCertificate(files: { certfile: string; keyfile: string; hosts?: readonly string[] }, minVersion: MinVersion): LoadedCertificate {
  const cert = read(files.certfile);
  const key = read(files.keyfile);
  // Each alone first, so that the message blames the right file.
  const hosts = check(files.certfile, 'not a usable certificate', () => {
    createSecureContext({ cert });
    return files.hosts ?? certificateNames(cert);
  });
  check(files.keyfile, 'not a usable private key', () => createSecureContext({ key }));
  // A context SNI switches to keeps the version floor only if it has it too.
  const context = check(files.keyfile, `not the key of ${files.certfile}`, () => createSecureContext({ cert, key, minVersion }));
  return { cert, key, hosts, context };
}

function check<T>(file: string, problem: string, attempt: () => T): T {
  try {
    return attempt();
  } catch (err) {
    throw new GatehouseError('GH_ERR_CONFIG', `${file}: ${problem}: ${(err as Error).message}`);
  }
}

/** The listener's certificates, read from disk and checked, default first. */
function loadCertificates(listener: ListenerSettings, minVersion: MinVersion): LoadedCertificate[] {
  const all: { certfile: string; keyfile: string; hosts?: readonly string[] }[] = [...(listener.certificates ?? [])];
  if (listener.certfile !== undefined && listener.keyfile !== undefined) all.unshift({ certfile: listener.certfile, keyfile: listener.keyfile });
  const loaded = all.map((files) => loadCertificate(files, minVersion));
  const star = loaded.findIndex((c) => c.hosts.includes('*'));
  if (star > 0) loaded.unshift(...loaded.splice(star, 1));
  return loaded;
}

/** Picks a context by server name: exact, then one-label wildcard; undefined leaves Node's default (the first certificate). */
export function sniSelector(entries: readonly { hosts: readonly string[]; context: SecureContext }[]): (name: string) => SecureContext | undefined {
  const exact = new Map<string, SecureContext>();
  const wildcard = new Map<string, SecureContext>();
  for (const { hosts, context } of entries) {
    for (const host of hosts) {
      // An earlier certificate keeps a name a later one repeats.
      if (host.startsWith('*.')) {
        if (!wildcard.has(host.slice(2))) wildcard.set(host.slice(2), context);
      } else if (host !== '*' && !exact.has(host)) {
        exact.set(host, context);
      }
    }
  }
  return (servername) => {
    const name = servername.toLowerCase().replace(/\.$/, '');
    const exactMatch = exact.get(name);
    if (exactMatch !== undefined) return exactMatch;
    const dot = name.indexOf('.');
    return dot > 0 ? wildcard.get(name.slice(dot + 1)) : undefined;
  };
}

/**
 * A TLS listener's certificates as served. reload() reads them again for the
 * connections to come; connections already open keep the ones they have.
 */
export class TlsContext {
  private readonly minVersion: MinVersion;
  private readonly options: TlsOptions;
  private select: (name: string) => SecureContext | undefined;
  private server: TlsServer | null = null;

  /** Reads the files; throws GH_ERR_CONFIG naming the one that cannot be used. */
  constructor(readonly listener: ListenerSettings) {
    this.minVersion = listener.tls_min_version === '1.3' ? 'TLSv1.3' : 'TLSv1.2';
    const certificates = loadCertificates(listener, this.minVersion);
    this.select = sniSelector(certificates);
    const first = certificates[0]!;
    this.options = { cert: first.cert, key: first.key, minVersion: this.minVersion };
    // Looks the selector up at each handshake, so that reload() can replace it.
    if (certificates.length > 1) this.options.SNICallback = (servername, callback) => callback(null, this.select(servername));
  }

  /** node:tls server options: the default certificate, and SNI over the others. */
  serverOptions(): TlsOptions {
    return { ...this.options };
  }

  /** The server created with serverOptions(): reload() swaps its default certificate. */
  attach(server: TlsServer): void {
    this.server = server;
  }

  /**
   * Reads every certificate and key of the listener again and, only if all of
   * them can be used, serves them to new connections (both swaps happen in
   * one tick: no handshake sees half of them). Otherwise throws, naming the
   * file and why, and the old certificates stay.
   */
  reload(): void {
    const fresh = loadCertificates(this.listener, this.minVersion);
    const first = fresh[0]!;
    this.server?.setSecureContext({ cert: first.cert, key: first.key, minVersion: this.minVersion });
    this.select = sniSelector(fresh);
  }
}
