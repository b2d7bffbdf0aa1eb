/** Real back ends for the upstream actions' tests: php-fpm and uWSGI from Debian, on unix sockets in a temp dir (no port races). */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from './wait.js';
import { hasCommand } from './gatehouse.js';

export const PHP_FPM = 'php-fpm8.2';
export const hasPhpFpm = (): boolean => hasCommand(PHP_FPM);
export const hasUwsgi = (): boolean => hasCommand('uwsgi') && hasCommand('uwsgi_python3');

export function tempDir(name: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), `gatehouse-${name}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Resolves once something accepts connections at the unix socket `path` (or TCP `port`). */
export async function waitForSocket(target: string | number, ms = 15000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = typeof target === 'string' ? connect(target) : connect(target, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening at ${target} after ${ms} ms`);
    await sleep(50);
  }
}

export interface Peer {
  proc: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

function startPeer(cmd: string, args: string[], cwd: string, logFile?: string): Peer {
  const proc = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return {
    proc,
    output: () => out + (logFile !== undefined && existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGINT');
      const done = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
      if (!done) {
        proc.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/** Waits for the peer's sockets; on failure, stops it and says what it printed. */
async function ready(peer: Peer, targets: (string | number)[]): Promise<void> {
  try {
    for (const t of targets) await waitForSocket(t);
  } catch (err) {
    await peer.stop();
    throw new Error(`${(err as Error).message}; it printed:\n${peer.output()}`);
  }
}

/** php-fpm in the foreground with its own pool config (no system ini), listening at `listen`. */
export async function startPhpFpm(dir: string, listen: string, pool: Record<string, string | number> = {}): Promise<Peer> {
  const settings: Record<string, string | number> = { listen, pm: 'static', 'pm.max_children': 2, 'clear_env': 'no', ...pool };
  // As root, php-fpm wants a pool user and -R.
  const root = process.getuid?.() === 0;
  if (root) settings.user = 'root';
  const conf = join(dir, 'php-fpm.conf');
  // Node's pipes are socket pairs, which php-fpm cannot open as /proc/self/fd/2: its log goes to a file.
  const log = join(dir, 'php-fpm.log');
  const lines = ['[global]', `error_log = ${log}`, 'daemonize = no', '[www]', ...Object.entries(settings).map(([k, v]) => `${k} = ${v}`)];
  writeFileSync(conf, lines.join('\n') + '\n');
  const peer = startPeer(PHP_FPM, ['-n', '-F', ...(root ? ['-R'] : []), '-y', conf, '-d', 'post_max_size=16M', '-d', 'upload_max_filesize=16M'], dir, log);
  await ready(peer, listen.startsWith('/') ? [listen] : [Number(listen.split(':')[1])]);
  return peer;
}

/** uWSGI serving a WSGI file with Debian's python3 plugin. */
export async function startUwsgi(dir: string, wsgiFile: string, sockets: { socket?: string; scgi?: string }, extra: string[] = []): Promise<Peer> {
  const args = ['--plugin', 'python3', '--wsgi-file', wsgiFile, '--master', '--processes', '2', '--disable-logging', '--die-on-term', ...extra];
  if (sockets.socket) args.push('--socket', sockets.socket);
  if (sockets.scgi) args.push('--scgi-socket', sockets.scgi);
  const peer = startPeer('uwsgi', args, dir);
  await ready(peer, [sockets.socket, sockets.scgi].filter((s) => s !== undefined));
  return peer;
}

/**
 * A TCP relay in front of a back end that counts the connections it is
 * given: how a test sees whether connections are kept alive and reused.
 */
export async function countingRelay(target: string): Promise<{ port: number; connections(): number; close(): Promise<void> }> {
  let count = 0;
  const sockets = new Set<Socket>();
  const server: NetServer = createServer((client) => {
    count++;
    const up = connect(target);
    for (const s of [client, up]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(up);
    up.pipe(client);
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    connections: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Free TCP ports on loopback, for a peer that cannot be told to pick its own (nginx). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<NetServer>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** nginx in the foreground with `http` as its http {} block; its temp files and logs in `dir`. */
export async function startNginx(dir: string, http: string, ports: number[]): Promise<Peer> {
  const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${join(dir, `ngx-${t}`)};`).join(' ');
  const conf = join(dir, 'nginx.conf');
  const log = join(dir, 'nginx-error.log');
  writeFileSync(
    conf,
    `daemon off; worker_processes 1; pid ${join(dir, 'nginx.pid')}; error_log ${log};\n` +
      (process.getuid?.() === 0 ? 'user root;\n' : '') +
      `events { worker_connections 256; }\nhttp { access_log off; ${temps}\n${http}\n}\n`,
  );
  const peer = startPeer('nginx', ['-c', conf, '-p', dir, '-e', log], dir, log);
  await ready(peer, ports);
  return peer;
}
