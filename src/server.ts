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
import { resolveUser } from './config/users.js';
import { watchForReload } from './pool/reload-watch.js';
import { Logger } from './log/logger.js';
import { WorkerPool } from './pool/worker-pool.js';
import { parseStaticRoute, StaticFiles } from './handlers/static-files.js';

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
  private readonly sourceDirs: string[];
  private stopWatching: (() => void) | null = null;

  constructor(readonly config: Config) {
    this.logger = new Logger(config.logLevel);
    this.binds = config.bind.map((b) => parseBind(b).address!);
    const { python, cwd, env } = pythonSetup(config);
    const pythonpath = config.pythonpath.map((p) => resolve(cwd, p));
    this.sourceDirs = [cwd, ...pythonpath];
    const owner = resolveUser(config.user, config.group);
    if (config.reloadOnTouch !== undefined && !existsSync(config.reloadOnTouch)) {
      throw configError('--reload-on-touch', config.reloadOnTouch, 'no such file');
    }
    this.pool = new WorkerPool(
      {
        spawn: {
          python,
          cwd,
          env,
          settings: { app: config.app, pythonpath, threads: config.threads, server_software: `gatehouse/${VERSION}` },
          ...owner,
        },
        workers: config.workers,
        threads: config.threads,
        timeout: config.timeout,
        queueSize: config.queueSize,
        queueTimeout: config.queueTimeout,
        maxRequests: config.maxRequests,
        maxRequestsJitter: config.maxRequestsJitter,
        maxRss: config.maxRss * 2 ** 20,
        preload: config.preload,
      },
      this.logger,
    );
    this.accessLog = config.accessLog
      ? new AccessLog(config.accessLog, (err) => this.logger.error(`access log: ${err.message}`))
      : null;
    this.front = new HttpFront(this.pool, { logger: this.logger, accessLog: this.accessLog, draining: false }, {
      maxRequestBody: config.maxRequestBody,
      bodyOwner: owner,
      statics: config.static
        .map((text) => new StaticFiles(parseStaticRoute(text).route!))
        .sort((a, b) => b.route.prefix.length - a.route.prefix.length),
    });
  }

  /** Binds and boots; returns the addresses actually bound (port 0 resolved). */
  async start(): Promise<string[]> {
    this.logger.info(`Starting gatehouse ${VERSION}`);
    const bound = await this.front.listen(this.binds);
    for (const address of bound) this.logger.info(`Listening at: http://${address} (${process.pid})`);
    const { workers, threads } = this.config;
    this.logger.info(`Using worker: ${threads > 1 ? `threads (${threads} per process)` : 'sync'} (${workers} processes)`);
    await this.pool.start();
    this.stopWatching = watchForReload(
      { touchFile: this.config.reloadOnTouch, sourceDirs: this.config.reload ? this.sourceDirs : [] },
      (reason) => this.pool.reload(reason),
      this.logger,
    );
    return bound;
  }

  /** Imports the app in one worker and stops: `--check-config`. */
  static async check(config: Config): Promise<void> {
    const server = new Gatehouse({ ...config, workers: 1 });
    try {
      await server.pool.start();
    } finally {
      await server.pool.stop(0);
    }
  }

  /** SIGUSR1: reopen the log files (after logrotate moved them). */
  reopenLogs(): void {
    this.accessLog?.reopen();
    this.logger.info('Reopened log files');
  }

  /**
   * Graceful: stop accepting, let requests under way finish within
   * `graceSeconds` (bodies still arriving, responses still flowing to slow
   * clients), then stop the workers and cut what is left.
   */
  async stop(graceSeconds: number): Promise<void> {
    this.stopWatching?.();
    const deadline = performance.now() + graceSeconds * 1000;
    await this.front.drain(deadline);
    await this.pool.stop(Math.max(0, deadline - performance.now()));
    this.front.closeAll();
    await this.accessLog?.close();
  }
}
