/**
 * TLS for a listener: its certificates and the oldest protocol version it
 * accepts, as node:tls server options.
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
import { createSecureContext, type SecureContext, type TlsOptions } from 'node:tls';
import { GatehouseError } from '../errors.js';
import type { ListenerSettings } from '../config/schema.js';

interface LoadedCertificate {
  cert: Buffer;
  key: Buffer;
  hosts: readonly string[];
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

/** The listener's certificates, read from disk, default first. */
function loadCertificates(listener: ListenerSettings): LoadedCertificate[] {
  const all: { certfile: string; keyfile: string; hosts?: readonly string[] }[] = [...(listener.certificates ?? [])];
  if (listener.certfile !== undefined && listener.keyfile !== undefined) all.unshift({ certfile: listener.certfile, keyfile: listener.keyfile });
  const loaded = all.map((c) => {
    const cert = read(c.certfile);
    return { cert, key: read(c.keyfile), hosts: c.hosts ?? certificateNames(cert) };
  });
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

/** node:tls server options for a TLS listener. */
export function tlsOptions(listener: ListenerSettings): TlsOptions {
  const certificates = loadCertificates(listener);
  const minVersion = listener.tls_min_version === '1.3' ? 'TLSv1.3' : 'TLSv1.2';
  const first = certificates[0]!;
  const options: TlsOptions = { cert: first.cert, key: first.key, minVersion };
  if (certificates.length > 1) {
    // A context SNI switches to keeps the version floor only if it has it too.
    const select = sniSelector(certificates.map((c) => ({ hosts: c.hosts, context: createSecureContext({ cert: c.cert, key: c.key, minVersion }) })));
    options.SNICallback = (servername, callback) => callback(null, select(servername));
  }
  return options;
}
