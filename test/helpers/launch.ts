/**
 * Starting gatehouse for a test: a launcher that waits for every worker and
 * works with any --bind (unix sockets, IPv6), the same from a config file,
 * a server kept for the length of a callback, and the CLI run to completion.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, ROOT } from './gatehouse.js';
import { childPids, isAlive } from './processes.js';

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
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; bootMs?: number; workers?: number; nodeArgs?: string[]; wrap?: string[] } = {},
): Promise<Server> {
  const full = [...args];
  let workers = opts.workers ?? 1;
  if (opts.workers === undefined) {
    if (!full.some((a) => a === '-b' || a === '--bind' || a.startsWith('--bind='))) full.unshift('--bind', '127.0.0.1:0');
    const wi = full.findIndex((a) => a === '-w' || a === '--workers');
    if (wi >= 0) workers = Number(full[wi + 1]);
    else full.push('--workers', '1');
  }

  // `wrap`: a command that runs gatehouse in its place (exec), such as prlimit with limits of its own.
  const command = [...(opts.wrap ?? []), process.execPath, ...(opts.nodeArgs ?? []), CLI, ...full];
  const proc = spawn(command[0]!, command.slice(1), {
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

/** Starts a server, runs `fn`, and always stops the server (and any worker it left) afterwards. */
export async function withServer<T>(
  args: string[],
  fn: (server: Server) => Promise<T>,
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; bootMs?: number; wrap?: string[]; workers?: number } = {},
): Promise<T> {
  const server = await launch(args, opts);
  try {
    return await fn(server);
  } finally {
    await server.kill();
  }
}
