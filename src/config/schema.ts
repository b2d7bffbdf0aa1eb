/**
 * The configuration schema: the single source of truth for what gatehouse
 * accepts. CLI flags (src/config/cli-args.ts) are generated from `OPTIONS`;
 * each option's `doc` is its user documentation (`gatehouse --help`).
 */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { LOG_LEVELS } from '../log/logger.js';
import { parseBind } from './bind.js';
import { parseStaticRoute } from '../handlers/static-files.js';

/** `100m`, `64k`, `1g` or a plain number of bytes (nginx's size syntax). */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+)([kmg]?)b?$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(m[1]) * unit;
}

const bindAddress = z.string().superRefine((value, ctx) => {
  const problem = parseBind(value).problem;
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

const APP_NEEDED = 'name the WSGI application to serve, e.g. gatehouse myproject.wsgi:application or gatehouse app.py';

const staticRoute = z.string().superRefine((value, ctx) => {
  const problem = parseStaticRoute(value).problem;
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

const seconds = z.number().nonnegative('must be 0 or more seconds');

export const ConfigSchema = z
  .object({
    app: z.string({ error: APP_NEEDED }).min(1, APP_NEEDED),
    bind: z.array(bindAddress).min(1).default(['127.0.0.1:8000']),
    workers: z.number().int('must be a whole number').min(1, 'must be at least 1').default(availableParallelism()),
    threads: z.number().int('must be a whole number').min(1, 'must be at least 1').max(1024).default(1),
    python: z.string().min(1).default('python3'),
    venv: z.string().min(1).optional(),
    chdir: z.string().min(1).optional(),
    pythonpath: z.array(z.string().min(1)).default([]),
    static: z.array(staticRoute).default([]),
    timeout: seconds.default(30),
    gracefulTimeout: seconds.default(30),
    queueSize: z.number().int('must be a whole number').min(0).default(1024),
    queueTimeout: seconds.default(30),
    maxRequestBody: z.number().int().min(0).default(100 * 1024 ** 2),
    accessLog: z.string().min(1).optional(),
    logLevel: z.enum(LOG_LEVELS).default('info'),
    reload: z.boolean().default(false),
    reloadOnTouch: z.string().min(1).optional(),
    maxRequests: z.number().int('must be a whole number').min(0).default(0),
    maxRequestsJitter: z.number().int('must be a whole number').min(0).default(0),
    maxRss: z.number().min(0, 'must be 0 or more megabytes').default(0),
    user: z.string().min(1).optional(),
    group: z.string().min(1).optional(),
    checkConfig: z.boolean().default(false),
    preload: z.boolean().default(false),
  })
  .strict();

export type Config = Readonly<z.infer<typeof ConfigSchema>>;
export type ConfigKey = keyof z.infer<typeof ConfigSchema>;

type Kind = 'string' | 'list' | 'int' | 'number' | 'seconds' | 'size' | 'choice' | 'flag';

export interface OptionSpec {
  key: ConfigKey;
  flag: string;
  short?: string;
  kind: Kind;
  /** Placeholder in --help ('' for a flag that takes no value). */
  arg: string;
  /** User documentation, shown by --help. */
  doc: string;
}

export const OPTIONS: readonly OptionSpec[] = [
  { key: 'bind', flag: 'bind', short: 'b', kind: 'list', arg: 'ADDRESS',
    doc: 'Address to listen on: HOST:PORT, [::1]:PORT or unix:PATH. Repeat for several. Default 127.0.0.1:8000.' },
  { key: 'workers', flag: 'workers', short: 'w', kind: 'int', arg: 'N',
    doc: 'Number of Python worker processes. Default: the number of CPUs.' },
  { key: 'threads', flag: 'threads', kind: 'int', arg: 'N',
    doc: 'Requests each worker runs at once, in threads (wsgi.multithread is then True). Default 1.' },
  { key: 'python', flag: 'python', kind: 'string', arg: 'PATH',
    doc: 'Python interpreter that runs the workers. Default: python3 on PATH.' },
  { key: 'venv', flag: 'venv', kind: 'string', arg: 'DIR',
    doc: "Run the workers with this virtualenv's interpreter and site-packages." },
  { key: 'chdir', flag: 'chdir', kind: 'string', arg: 'DIR',
    doc: 'Change to this directory before loading the app. Default: the current directory.' },
  { key: 'pythonpath', flag: 'pythonpath', kind: 'list', arg: 'DIR',
    doc: 'Add a directory to the front of sys.path. Repeatable; a comma-separated list also works.' },
  { key: 'static', flag: 'static', kind: 'list', arg: 'URL=DIR',
    doc: 'Serve the files under DIR at URL from the front, without Python (e.g. /static=./static). Repeatable.' },
  { key: 'timeout', flag: 'timeout', short: 't', kind: 'seconds', arg: 'SECONDS',
    doc: 'A request running longer than this gets 504 and its worker is killed and replaced. 0 disables. Default 30.' },
  { key: 'gracefulTimeout', flag: 'graceful-timeout', kind: 'seconds', arg: 'SECONDS',
    doc: 'On SIGTERM, how long in-flight requests may take to finish before workers are killed. Default 30.' },
  { key: 'queueSize', flag: 'queue-size', kind: 'int', arg: 'N',
    doc: 'Requests that may wait for a free worker; past it new requests get 503. Default 1024.' },
  { key: 'queueTimeout', flag: 'queue-timeout', kind: 'seconds', arg: 'SECONDS',
    doc: 'A request waiting this long for a free worker gets 503. 0 waits forever. Default 30.' },
  { key: 'maxRequestBody', flag: 'max-request-body', kind: 'size', arg: 'SIZE',
    doc: 'Largest request body accepted (413 past it): bytes or 64k, 10m, 1g. Default 100m.' },
  { key: 'accessLog', flag: 'access-log', kind: 'string', arg: 'FILE',
    doc: "Write an access log in Combined Log Format to FILE, or '-' for stdout. Default: none." },
  { key: 'logLevel', flag: 'log-level', kind: 'choice', arg: 'LEVEL',
    doc: `Error log level: ${LOG_LEVELS.join(', ')}. Default info.` },
  { key: 'reload', flag: 'reload', kind: 'flag', arg: '',
    doc: "Development: reload the workers when a .py file changes under --chdir or --pythonpath." },
  { key: 'reloadOnTouch', flag: 'reload-on-touch', kind: 'string', arg: 'FILE',
    doc: 'Reload the workers gracefully when FILE is touched (its modification time changes).' },
  { key: 'maxRequests', flag: 'max-requests', kind: 'int', arg: 'N',
    doc: 'Replace a worker after it has served N requests (with no request lost). 0 disables. Default 0.' },
  { key: 'maxRequestsJitter', flag: 'max-requests-jitter', kind: 'int', arg: 'N',
    doc: 'Add a random 0..N to each worker\'s --max-requests, so workers do not all restart at once. Default 0.' },
  { key: 'maxRss', flag: 'max-rss', kind: 'number', arg: 'MB',
    doc: 'Replace a worker, after its current request, when its resident memory exceeds MB megabytes. 0 disables.' },
  { key: 'user', flag: 'user', short: 'u', kind: 'string', arg: 'USER',
    doc: 'Run the workers as this user (name or uid) when started as root; the front keeps the sockets.' },
  { key: 'group', flag: 'group', short: 'g', kind: 'string', arg: 'GROUP',
    doc: "Run the workers with this group (name or gid). Default: --user's primary group." },
  { key: 'preload', flag: 'preload', kind: 'flag', arg: '',
    doc: 'Import the app once and fork the workers from that process, so they share memory; SIGHUP still loads new code.' },
  { key: 'checkConfig', flag: 'check-config', kind: 'flag', arg: '',
    doc: 'Check the configuration and that the app imports, then exit 0 (or 1 with the reason).' },
];

/** Validates raw settings; returns the frozen config or the list of problems, each naming its key. */
export function validateConfig(raw: Record<string, unknown>): { config?: Config; problems: string[] } {
  const result = ConfigSchema.safeParse(raw);
  if (result.success) return { config: Object.freeze(result.data), problems: [] };
  const problems = result.error.issues.map((issue) => {
    const key = issue.path[0];
    const option = OPTIONS.find((o) => o.key === key);
    const name = key === 'app' ? 'APP' : option ? `--${option.flag}` : String(issue.path.join('.') || 'config');
    let value: unknown = raw;
    for (const part of issue.path) value = (value as Record<PropertyKey, unknown> | undefined)?.[part as PropertyKey];
    if (issue.code === 'unrecognized_keys') return `unknown setting(s): ${issue.keys.join(', ')}`;
    return `${name}: ${issue.message}${value === undefined ? '' : ` (got ${JSON.stringify(value)})`}`;
  });
  return { problems };
}
