/**
 * A running gatehouse: the HTTP front, one worker pool, the logs. Life cycle:
 * `start()` binds first (a port in use fails before any Python starts), then
 * boots the workers; `stop()` is safe after a half-done start.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseBind, type BindAddress } from './config/bind.js';
import type { Config } from './config/schema.js';
import { configError } from './errors.js';
import { HttpFront } from './front/http-front.js';
import { AccessLog } from './log/access-log.js';
import { Logger } from './log/logger.js';
import { WorkerPool } from './pool/worker-pool.js';

export const VERSION: string = JSON.parse(
  readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8'),
).version;

/** Where the worker runs and with which interpreter, after checking the paths exist. */
function pythonSetup(config: Config): { python: string; cwd: string; env: NodeJS.ProcessEnv } {
  const cwd = resolve(config.chdir ?? '.');
  if (!existsSync(cwd) || !statSync(cwd).isDirectory()) throw configError('--chdir', config.chdir, 'no such directory');
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: '1' };
  let python = config.python;
  if (config.venv !== undefined) {
    const venv = resolve(config.venv);
    python = join(venv, 'bin', 'python');
    if (!existsSync(python)) throw configError('--venv', config.venv, `not a virtualenv: ${python} does not exist`);
    env.VIRTUAL_ENV = venv;
    env.PATH = join(venv, 'bin') + delimiter + (env.PATH ?? '');
    delete env.PYTHONHOME;
  }
  return { python, cwd, env };
}

export class Gatehouse {
  readonly logger: Logger;
  readonly pool: WorkerPool;
  readonly front: HttpFront;
  private readonly accessLog: AccessLog | null;
  private readonly binds: BindAddress[];

  constructor(readonly config: Config) {
    this.logger = new Logger(config.logLevel);
    this.binds = config.bind.map((b) => parseBind(b).address!);
    const { python, cwd, env } = pythonSetup(config);
    const pythonpath = config.pythonpath.map((p) => resolve(cwd, p));
    this.pool = new WorkerPool(
      {
        spawn: {
          python,
          cwd,
          env,
          settings: { app: config.app, pythonpath, server_software: `gatehouse/${VERSION}` },
        },
        workers: config.workers,
        timeout: config.timeout,
        queueSize: config.queueSize,
        queueTimeout: config.queueTimeout,
      },
      this.logger,
    );
    this.accessLog = config.accessLog
      ? new AccessLog(config.accessLog, (err) => this.logger.error(`access log: ${err.message}`))
      : null;
    this.front = new HttpFront(this.pool, { logger: this.logger, accessLog: this.accessLog, draining: false }, {
      maxRequestBody: config.maxRequestBody,
    });
  }

  /** Binds and boots; returns the addresses actually bound (port 0 resolved). */
  async start(): Promise<string[]> {
    this.logger.info(`Starting gatehouse ${VERSION}`);
    const bound = await this.front.listen(this.binds);
    for (const address of bound) this.logger.info(`Listening at: http://${address} (${process.pid})`);
    this.logger.info(`Using worker: sync (${this.config.workers} processes)`);
    await this.pool.start();
    return bound;
  }

  /**
   * Graceful: stop accepting, let requests under way finish within
   * `graceSeconds` (bodies still arriving, responses still flowing to slow
   * clients), then stop the workers and cut what is left.
   */
  async stop(graceSeconds: number): Promise<void> {
    const deadline = performance.now() + graceSeconds * 1000;
    await this.front.drain(deadline);
    await this.pool.stop(Math.max(0, deadline - performance.now()));
    this.front.closeAll();
    await this.accessLog?.close();
  }
}
