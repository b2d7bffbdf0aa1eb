/**
 * Test harness: starts a real gatehouse process (the built CLI) on a free
 * loopback port and stops it, checking no Python worker outlives it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CLI = `${ROOT}dist/src/cli.js`;
export const APPS = `${ROOT}test/apps`;
/** Debian's interpreter, where python3-flask and python3-django are installed. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

export interface RunningGatehouse {
  proc: ChildProcess;
  /** `http://127.0.0.1:PORT` */
  url: string;
  port: number;
  /** Everything the server wrote to stderr and stdout so far. */
  output(): string;
  /** Resolves when the output matches, rejects after `ms`. */
  waitFor(pattern: RegExp, ms?: number): Promise<RegExpMatchArray>;
  /** SIGTERM (or `signal`), wait for exit; returns the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `gatehouse ...args` with `--bind 127.0.0.1:0` unless args bind themselves. */
export async function startGatehouse(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunningGatehouse> {
  const full = args.some((a) => a === '-b' || a === '--bind' || a.startsWith('--bind=')) ? args : ['--bind', '127.0.0.1:0', ...args];
  const proc = spawn(process.execPath, [CLI, ...full], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters: Array<() => void> = [];
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const w of waiters.splice(0)) w();
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));

  const waitFor = (pattern: RegExp, ms = 15000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; output:\n${out}`)), ms);
      const check = () => {
        const m = out.match(pattern);
        if (m) {
          clearTimeout(timer);
          resolve(m);
        } else if (proc.exitCode !== null) {
          clearTimeout(timer);
          reject(new Error(`gatehouse exited (${proc.exitCode}) before ${pattern}; output:\n${out}`));
        } else waiters.push(check);
      };
      check();
      void exited.then(() => waiters.push(check) && check());
    });

  const m = await waitFor(/Listening at: http:\/\/[^:\s]+:(\d+)/);
  const port = Number(m[1]);
  // Ready when every worker has booted.
  const w = full.findIndex((a) => a === '-w' || a === '--workers');
  const workers = w >= 0 ? Number(full[w + 1]) : availableParallelism();
  for (let seen = 0; seen < workers; ) {
    await waitFor(new RegExp(`(?:[^]*?Booting worker with pid){${seen + 1}}`));
    seen = out.match(/Booting worker with pid/g)?.length ?? 0;
  }
  return {
    proc,
    port,
    url: `http://127.0.0.1:${port}`,
    output: () => out,
    waitFor,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** Runs the CLI to completion (for --help, bad flags, boot failures). */
export function runGatehouse(args: string[], opts: { cwd?: string; timeoutMs?: number } = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? ROOT, encoding: 'utf8', timeout: opts.timeoutMs ?? 20000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** True when Debian's Python has the module (tests that need it skip otherwise). */
export function hasSystemModule(module: string): boolean {
  if (!existsSync(SYSTEM_PYTHON)) return false;
  return spawnSync(SYSTEM_PYTHON, ['-c', `import ${module}`]).status === 0;
}

export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}
