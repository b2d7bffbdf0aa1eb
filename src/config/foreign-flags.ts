/**
 * gunicorn's and uWSGI's flags that gatehouse has no flag for, with what to
 * use instead: people type them from habit, and "unknown option" alone
 * leaves them to search --help. (Those with a gatehouse flag of the same
 * meaning are aliases in options.ts instead: --access-logfile, --keep-alive,
 * --socket.)
 */
const WORKER_CLASS = "gatehouse tells a WSGI from an ASGI app itself (--interface auto|wsgi|asgi); gunicorn's gthread is --threads N";
const ERROR_LOG = "the error log goes to stderr (a redirect, or systemd's journal, keeps it); --log-level sets its level";
const NO_DAEMON = 'gatehouse writes no pid file and stays in the foreground: run it under systemd or another supervisor';
const HEADER_SIZE = '--max-header-size SIZE (the request line and headers together)';
const LINE_SIZE = '--max-header-size SIZE (the request line and headers together; a target that alone reaches it gets 414)';

const INSTEAD: Record<string, string> = {
  '-k': WORKER_CLASS,
  '--worker-class': WORKER_CLASS,
  '--worker-connections': 'for an ASGI app, --max-concurrency N',
  '--error-logfile': ERROR_LOG,
  '--log-file': ERROR_LOG,
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

/** What to use instead of `flag` (as typed: `--name`, `--name=value` or `-x`), or null. */
export function insteadOf(flag: string): string | null {
  return INSTEAD[flag.split('=')[0]!] ?? null;
}
