/**
 * gunicorn's and uWSGI's flags that gatehouse has no flag for, with what to
 * use instead: people type them from habit, and "unknown option" alone
 * leaves them to search --help. (Those with a gatehouse flag of the same
 * meaning are aliases in options.ts instead: --access-logfile, --keep-alive,
 * --error-logfile, --socket; those that say what gatehouse does anyway are
 * taken by translateForeign().)
 */
const WORKER_CLASS = 'gatehouse runs sync, gthread and uvicorn\'s worker classes as they are; for gevent or eventlet, --threads N (or an ASGI app: --interface asgi)';
const NO_DAEMON = 'gatehouse writes no pid file and stays in the foreground: run it under systemd or another supervisor';
const HEADER_SIZE = '--max-header-size SIZE (the request line and headers together)';
const LINE_SIZE = '--max-header-size SIZE (the request line and headers together; a target that alone reaches it gets 414)';

const INSTEAD: Record<string, string> = {
  '-k': WORKER_CLASS,
  '--worker-class': WORKER_CLASS,
  '--worker-connections': 'for an ASGI app, --max-concurrency N',
  '-p': `gunicorn's -p: ${NO_DAEMON}; uWSGI's -p: --workers N`,
  '--pid': NO_DAEMON,
  '--pidfile': NO_DAEMON,
  '-D': NO_DAEMON,
  '--daemon': NO_DAEMON,
  '--limit-request-line': LINE_SIZE,
  '--limit-request-field_size': HEADER_SIZE,
  '--http': '--bind ADDRESS',
  '--http-socket': '--bind ADDRESS',
  '--processes': '--workers N',
  '--module': 'the APP argument (module:callable)',
  '--wsgi-file': 'the APP argument (path/to/file.py)',
  '--master': 'gatehouse always supervises its workers',
};

/**
 * gunicorn's flags whose meaning gatehouse has without a flag of that name,
 * as Dockerfiles and Procfiles give them: `--log-file` (--error-log's older
 * gunicorn name), `--capture-output` (workers' output is always logged),
 * `-k sync` / `gthread` (the workers are that already; --threads says how many
 * threads) and uvicorn's worker classes (`--interface asgi`). They are dropped
 * or made gatehouse's own, so such a command line runs unchanged; any other
 * worker class (gevent) is left for insteadOf()'s advice.
 */
export function translateForeign(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const inline = name !== arg ? arg.slice(eq + 1) : undefined;
    const value = inline ?? argv[i + 1];
    const taken = inline === undefined ? 2 : 1;
    if (name === '--log-file') {
      // gunicorn's older name of --error-logfile.
      out.push(inline === undefined ? '--error-log' : `--error-log=${inline}`);
    } else if (name === '--capture-output') {
      continue;
    } else if ((name === '-k' || name === '--worker-class') && value !== undefined && GUNICORN_WORKERS[value] !== undefined) {
      out.push(...GUNICORN_WORKERS[value]!);
      i += taken - 1;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** gunicorn's worker classes gatehouse runs as they are: what each becomes. */
const GUNICORN_WORKERS: Record<string, string[]> = {
  sync: [],
  gthread: [],
  'uvicorn.workers.UvicornWorker': ['--interface', 'asgi'],
  'uvicorn.workers.UvicornH11Worker': ['--interface', 'asgi'],
  'uvicorn_worker.UvicornWorker': ['--interface', 'asgi'],
};

/** What to use instead of `flag` (as typed: `--name`, `--name=value` or `-x`), or null. */
export function insteadOf(flag: string): string | null {
  return INSTEAD[flag.split('=')[0]!] ?? null;
}
