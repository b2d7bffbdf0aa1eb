/** The gatehouse command (cli.ts loads it): parse flags, start, and turn signals into stops. */
import { helpText, parseCli } from './config/cli-args.js';
import { GatehouseError } from './errors.js';
import { loadSite, type Site } from './config/site.js';
import { Gatehouse, VERSION } from './server.js';
import { trimHeapWhenIdle } from './idle-heap-trim.js';

function fail(err: unknown, debug: boolean, exitCode?: number): never {
  if (err instanceof GatehouseError) {
    process.stderr.write(`gatehouse: error: ${err.code}: ${err.message}\n`);
    // The detail (a traceback) when it says more than the message, which ends with its last line.
    const detail = err.detail?.trimEnd();
    if (detail && !err.message.endsWith(detail.trim())) process.stderr.write(detail + '\n');
    if (debug && err.stack) process.stderr.write(err.stack + '\n');
    process.exit(exitCode ?? err.exitCode);
  }
  process.stderr.write(`gatehouse: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(70);
}

async function main(): Promise<void> {
  let site: Site;
  try {
    const cli = parseCli(process.argv.slice(2));
    if (cli.kind === 'help') return void process.stdout.write(helpText());
    if (cli.kind === 'version') return void process.stdout.write(`gatehouse ${VERSION}\n`);
    site = loadSite(cli.settings, cli.flags);
  } catch (err) {
    fail(err, false);
  }
  const config = site.settings;
  const debug = config.log_level === 'debug';
  if (config.check_config) {
    try {
      await Gatehouse.check(site);
    } catch (err) {
      fail(err, debug, 1); // gunicorn's --check-config exits 1 on any problem
    }
    const apps = site.apps.map((a) => a.app).join(', ');
    process.stdout.write(`gatehouse: configuration OK${apps ? `; ${apps} import${site.apps.length > 1 ? '' : 's'}` : ''}\n`);
    process.exit(0);
  }
  // A log reader that goes away (`gatehouse | tee`, a log shipper restarting) must not take the
  // server with it: writes to a closed pipe fail with EPIPE, and an unheard 'error' would end the process.
  for (const out of [process.stdout, process.stderr]) out.on('error', () => {});
  let server: Gatehouse | null = null;
  let stopping = false;
  const stop = async (graceSeconds: number, signal: string) => {
    if (stopping) {
      // A second signal: do not wait any longer.
      process.exit(1);
    }
    stopping = true;
    server?.logger.info(`Handling signal: ${signal.replace('SIG', '').toLowerCase()}`);
    await server?.stop(graceSeconds);
    server?.logger.info('Shutting down: Master');
    process.exit(0);
  };
  // SIGTERM drains (gunicorn's graceful stop); SIGINT and SIGQUIT stop at once.
  process.on('SIGTERM', () => void stop(config.graceful_timeout, 'SIGTERM'));
  process.on('SIGINT', () => void stop(0, 'SIGINT'));
  process.on('SIGQUIT', () => void stop(0, 'SIGQUIT'));
  // gunicorn's other signals: HUP reloads, TTIN/TTOU add or remove a worker, USR1 reopens logs.
  process.on('SIGHUP', () => server?.reload('SIGHUP'));
  process.on('SIGTTIN', () => server?.resize(1));
  process.on('SIGTTOU', () => server?.resize(-1));
  process.on('SIGUSR1', () => server?.reopenLogs());

  try {
    server = await Gatehouse.create(site);
    await server.start();
    trimHeapWhenIdle(server.logger);
  } catch (err) {
    stopping = true;
    // With --error-log FILE the file has the failure too (stderr gets it below, as always).
    if (config.error_log !== '-' && err instanceof GatehouseError) server?.logger.error(`${err.code}: ${err.message}${err.detail ? `\n${err.detail.trimEnd()}` : ''}`);
    await server?.stop(0).catch(() => {});
    fail(err, debug);
  }
}

void main();
