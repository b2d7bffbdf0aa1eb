/**
 * More test helpers (beside gatehouse.ts): a launcher that waits for every
 * worker and works with any --bind (unix sockets, IPv6), process inspection
 * through /proc, and a raw HTTP/1.x client over node:net for tests where the
 * exact bytes on the wire matter.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { CLI, ROOT } from './gatehouse.js';

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------- processes

/** The fields of a process's (or one of its threads') stat line from the third (state) on, or null when it is gone. */
export function statFields(pid: number, thread?: number | string): string[] | null {
  try {
    const text = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8');
    // pid (comm) state ppid ...; comm may hold spaces and parentheses.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Parent pid and state letter of a live process (or of one of its threads), or null when it is gone. */
function procStat(pid: number, thread?: number): { ppid: number; state: string } | null {
  const rest = statFields(pid, thread);
  return rest === null ? null : { state: rest[0]!, ppid: Number(rest[1]) };
}

/** True while the process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const st = procStat(pid);
  return st !== null && st.state !== 'Z' && st.state !== 'X';
}

/** Live (non-zombie) direct children of `pid`. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = procStat(Number(name));
    if (st !== null && st.ppid === pid && st.state !== 'Z') out.push(Number(name));
  }
  return out.sort((a, b) => a - b);
}

/** The unlinked files a process holds open (its temp files). */
export function deletedFiles(pid: number): string[] {
  const dir = `/proc/${pid}/fd`;
  return readdirSync(dir).flatMap((fd) => {
    try {
      const target = readlinkSync(join(dir, fd));
      return target.endsWith(' (deleted)') ? [target] : [];
    } catch {
      return [];
    }
  });
}

/**
 * Live gatehouse Python workers whose command line contains `marker` (e.g.
 * the APP spec). Unlike gatehouse.ts's workerPids() this ignores workers of
 * other gatehouse instances that may be running on the machine.
 */
export function workerPidsFor(marker: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmdline.includes('gatehouse_worker.py') && cmdline.includes(marker) && isAlive(Number(name))) out.push(Number(name));
  }
  return out.sort((a, b) => a - b);
}

/**
 * SIGSTOP, then waits until every thread of the process has stopped: the
 * signal is not taken at once by all of a multi-threaded server's threads
 * (memcached here answered a request sent in the 5 ms after the kill in
 * about one case in five).
 */
export async function stopProcess(child: ChildProcess): Promise<void> {
  const pid = child.pid!;
  child.kill('SIGSTOP');
  const stopped = () => readdirSync(`/proc/${pid}/task`).every((tid) => procStat(pid, Number(tid))?.state === 'T');
  for (let i = 0; !stopped(); i++) {
    if (i === 1000) throw new Error(`process ${pid} did not stop within 1 s of SIGSTOP`);
    await sleep(1);
  }
}

/** Polls `check` every 25 ms until it returns true or `ms` passes; returns its last answer. */
export async function waitUntil(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(25);
  }
}

// ---------------------------------------------------------------- gatehouse

export interface Server {
  proc: ChildProcess;
  pid: number;
  /** What the server logged in its `Listening at: http(s)://ADDR (pid)` lines: the ADDR parts. */
  addresses: string[];
  /** The first TCP address as `http(s)://host:port` (IPv6 in brackets), or '' if none. */
  url: string;
  port: number;
  output(): string;
  /** Resolves when the output matches, rejects after `ms` or when the process exits first. */
  waitFor(pattern: RegExp, ms?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (null if killed by a signal), or rejects after `ms`. */
  exited(ms?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` (default SIGTERM) if still running and waits for the exit. */
  stop(signal?: NodeJS.Signals, ms?: number): Promise<number | null>;
  /** Stops the server if it is still running (SIGTERM, then SIGKILL) and kills any worker it left; never throws. */
  kill(): Promise<void>;
}

export function countMatches(text: string, pattern: RegExp): number {
  const flags = pattern.flags.includes('g') ? pattern.flags : pattern.flags + 'g';
  return [...text.matchAll(new RegExp(pattern.source, flags))].length;
}

/**
 * Starts `gatehouse ...args` (the built CLI). Adds `--bind 127.0.0.1:0` when
 * no bind is given and `--workers 1` when no worker count is given, then waits
 * until every worker has booted. With `opts.workers` (a config file's total,
 * 0 for none) the arguments are used as they are.
 */
export async function launch(
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; bootMs?: number; workers?: number; nodeArgs?: string[] } = {},
): Promise<Server> {
  const full = [...args];
  let workers = opts.workers ?? 1;
  if (opts.workers === undefined) {
    if (!full.some((a) => a === '-b' || a === '--bind' || a.startsWith('--bind='))) full.unshift('--bind', '127.0.0.1:0');
    const wi = full.findIndex((a) => a === '-w' || a === '--workers');
    if (wi >= 0) workers = Number(full[wi + 1]);
    else full.push('--workers', '1');
  }

  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), CLI, ...full], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const l of [...listeners]) l();
  };
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    notify();
  });
  proc.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
    notify();
  });
  const exitedP = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
      notify();
    }),
  );

  const waitOutput = <T>(check: (text: string) => T | null, what: string, ms: number) =>
    new Promise<T>((resolve, reject) => {
      const run = () => {
        const got = check(out);
        if (got !== null) {
          done();
          resolve(got);
        } else if (exit !== null) {
          done();
          reject(new Error(`gatehouse exited (${exit.code ?? exit.signal}) before ${what}; output:\n${out}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${ms} ms waiting for ${what}; output:\n${out}`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        listeners.delete(run);
      };
      listeners.add(run);
      run();
    });
  const waitFor = (pattern: RegExp, ms = 15000) => waitOutput((text) => text.match(pattern), String(pattern), ms);

  const exited = (ms = 10000) =>
    new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`gatehouse did not exit within ${ms} ms; output:\n${out}`)), ms);
      void exitedP.then((e) => {
        clearTimeout(timer);
        resolve(e);
      });
    });

  const server: Server = {
    proc,
    pid: proc.pid ?? 0,
    addresses: [],
    url: '',
    port: 0,
    output: () => out,
    waitFor,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM', ms = 10000) {
      if (exit === null) proc.kill(signal);
      return (await exited(ms)).code;
    },
    async kill() {
      // For finally blocks: SIGTERM, then SIGKILL; then make sure no worker of ours outlives the test.
      const workers = childPids(proc.pid ?? 0);
      if (exit === null) {
        proc.kill('SIGTERM');
        const graceful = await exited(5000).then(() => true, () => false);
        if (!graceful) {
          proc.kill('SIGKILL');
          await exited(5000).catch(() => {});
        }
      }
      for (const pid of workers) {
        try {
          if (isAlive(pid)) process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    },
  };

  try {
    const bootMs = opts.bootMs ?? 15000;
    const ready = (text: string) =>
      workers === 0 ? /Listening at: /.test(text) : countMatches(text, /Using worker: /) > 0 && countMatches(text, /Booting worker with pid/) >= workers;
    await waitOutput((text) => (ready(text) ? true : null), `${workers} booted worker(s)`, bootMs);
  } catch (err) {
    await server.kill();
    throw err;
  }
  const listening = [...out.matchAll(/Listening at: (https?):\/\/(\S+) \(/g)];
  server.addresses = listening.map((m) => m[2]!);
  const tcp = listening.find((m) => !m[2]!.startsWith('unix:'));
  if (tcp !== undefined) {
    server.url = `${tcp[1]}://${tcp[2]}`;
    server.port = Number(/:(\d+)$/.exec(tcp[2]!)![1]);
  }
  return server;
}

/** Writes `config` (TOML) to `dir`/gatehouse.toml and starts gatehouse from it; `workers`: the config's total, as launch() takes it. */
export async function launchConfig(dir: string, config: string, workers: number): Promise<Server> {
  const file = join(dir, 'gatehouse.toml');
  writeFileSync(file, config);
  return launch(['--config', file], { workers });
}

/** Runs the CLI to completion, asynchronously, measuring how long it took. */
export function runCli(
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number; timedOut: boolean }> {
  const started = Date.now();
  const proc = spawn(process.execPath, [CLI, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill('SIGKILL');
  }, opts.timeoutMs ?? 15000);
  return new Promise((resolve) =>
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started, timedOut });
    }),
  );
}

// ---------------------------------------------------------------- raw HTTP

export interface RawResponse {
  /** e.g. `HTTP/1.1` */
  version: string;
  status: number;
  reason: string;
  /** Header names lower-cased, in order, repeated names kept. */
  headers: Array<[string, string]>;
  /** Value of the first header with this name (any case), or undefined. */
  header(name: string): string | undefined;
  /** The body after de-chunking, if it was chunked. */
  body: Buffer;
  /** The exact bytes of the head (status line and headers, up to and including the blank line). */
  rawHead: string;
  chunked: boolean;
}

/** A TCP connection with a buffer of everything received, for byte-level HTTP tests. */
export class RawConnection {
  readonly socket: Socket;
  private buf = Buffer.alloc(0);
  private ended = false;
  private waiters = new Set<() => void>();
  readonly connected: Promise<void>;

  constructor(port: number, host = '127.0.0.1') {
    this.socket = connect({ port, host });
    this.socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    this.socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    this.socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    this.socket.on('error', () => {
      this.ended = true;
      this.wake();
    });
    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
  }

  static async open(port: number, host = '127.0.0.1'): Promise<RawConnection> {
    const c = new RawConnection(port, host);
    await c.connected;
    return c;
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** True once the server closed (or reset) the connection. */
  get closed(): boolean {
    return this.ended;
  }

  /** Everything received and not yet consumed by readResponse(). */
  get pending(): Buffer {
    return this.buf;
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Resolves when `check` is true for the received bytes, or rejects after `ms`. */
  waitForData(check: (received: Buffer, closed: boolean) => boolean, ms = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      const run = () => {
        let ok: boolean;
        try {
          ok = check(this.buf, this.ended);
        } catch (err) {
          done();
          reject(err as Error);
          return;
        }
        if (ok) {
          done();
          resolve();
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${ms} ms; received so far: ${JSON.stringify(this.buf.toString('latin1'))}`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(run);
      };
      this.waiters.add(run);
      run();
    });
  }

  /** Resolves when the server has closed the connection, or rejects after `ms`. */
  waitClosed(ms = 5000): Promise<void> {
    return this.waitForData((_b, closed) => closed, ms);
  }

  /**
   * Reads one complete response off the front of the buffer. `headRequest`:
   * a response to HEAD has no body. Bodies without Content-Length or chunking
   * run to the connection's close.
   */
  async readResponse(ms = 5000, opts: { headRequest?: boolean } = {}): Promise<RawResponse> {
    let parsed: { res: RawResponse; used: number } | null = null;
    await this.waitForData((b, closed) => {
      parsed = tryParseResponse(b, closed, opts.headRequest ?? false);
      if (parsed === null && closed) throw new Error(`connection closed mid-response: ${JSON.stringify(b.toString('latin1'))}`);
      return parsed !== null;
    }, ms);
    const { res, used } = parsed!;
    this.buf = this.buf.subarray(used);
    return res;
  }

  close(): void {
    this.socket.destroy();
  }
}

function tryParseResponse(b: Buffer, closed: boolean, headRequest: boolean): { res: RawResponse; used: number } | null {
  const headEnd = b.indexOf('\r\n\r\n');
  if (headEnd < 0) return null;
  const rawHead = b.subarray(0, headEnd + 4).toString('latin1');
  const lines = rawHead.slice(0, -4).split('\r\n');
  const m = /^(HTTP\/\d\.\d) (\d{3}) ?(.*)$/.exec(lines[0]!);
  if (!m) throw new Error(`not an HTTP status line: ${JSON.stringify(lines[0])}`);
  const headers: Array<[string, string]> = lines.slice(1).map((l) => {
    const c = l.indexOf(':');
    return [l.slice(0, c).trim().toLowerCase(), l.slice(c + 1).trim()];
  });
  const header = (name: string) => headers.find(([n]) => n === name.toLowerCase())?.[1];
  const status = Number(m[2]);
  let pos = headEnd + 4;
  let body: Buffer;
  const te = header('transfer-encoding');
  const chunked = te !== undefined && /chunked/i.test(te);
  if (headRequest || (status >= 100 && status < 200) || status === 204 || status === 304) {
    body = Buffer.alloc(0);
  } else if (chunked) {
    const parts: Buffer[] = [];
    for (;;) {
      const eol = b.indexOf('\r\n', pos);
      if (eol < 0) return null;
      const size = parseInt(b.subarray(pos, eol).toString('latin1').split(';')[0]!, 16);
      if (Number.isNaN(size)) throw new Error(`bad chunk size line: ${JSON.stringify(b.subarray(pos, eol).toString('latin1'))}`);
      if (size === 0) {
        // "0\r\n", optional trailer lines, then an empty line.
        const end = b.indexOf('\r\n\r\n', eol);
        if (end < 0) return null;
        pos = end + 4;
        break;
      }
      if (b.length < eol + 2 + size + 2) return null;
      parts.push(b.subarray(eol + 2, eol + 2 + size));
      pos = eol + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  } else if (header('content-length') !== undefined) {
    const n = Number(header('content-length'));
    if (b.length < pos + n) return null;
    body = b.subarray(pos, pos + n);
    pos += n;
  } else {
    if (!closed) return null;
    body = b.subarray(pos);
    pos = b.length;
  }
  return {
    res: { version: m[1]!, status, reason: m[3]!, headers, header, body: Buffer.from(body), rawHead, chunked },
    used: pos,
  };
}

/** Starts a server, runs `fn`, and always stops the server (and any worker it left) afterwards. */
export async function withServer<T>(
  args: string[],
  fn: (server: Server) => Promise<T>,
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; bootMs?: number } = {},
): Promise<T> {
  const server = await launch(args, opts);
  try {
    return await fn(server);
  } finally {
    await server.kill();
  }
}

// ---------------------------------------------------------------- node:http

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
 * (`http://127.0.0.1:8000`) or `{ socketPath }` for a unix socket.
 */
export function request(
  target: string | { socketPath: string },
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; timeoutMs?: number } = {},
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
    const req = httpRequest({ ...base, path, method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
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
