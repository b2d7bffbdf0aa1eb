/**
 * From settings (flags, a TOML file) to the site that runs: its listeners,
 * its apps (one worker pool each) and its routes. Every problem is reported
 * at once, each with its key path (`routes[2].static.root: ...`), or the flag
 * that set it; the result is frozen.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { GatehouseError } from '../errors.js';
import { envSettings } from './cli-args.js';
import { salvage } from './salvage.js';
import { listItems, OPTIONS } from './options.js';
import {
  APP_DEFAULTS,
  APP_MISSING,
  appSchema,
  configSchema,
  keyPairProblem,
  type AppSettings,
  type Config,
  type ListenerSettings,
  type RouteSettings,
} from './schema.js';

export interface Site {
  /** The top-level settings (server-wide ones are read from here). */
  settings: Config;
  listeners: ListenerSettings[];
  apps: AppSettings[];
  /** In the order given; the router picks by host, then longest prefix. */
  routes: RouteSettings[];
  /** The config file, when there is one. */
  file?: string;
}

const APP_NEEDED = 'name the application to serve (WSGI or ASGI), e.g. gatehouse myproject.wsgi:application, gatehouse main:app or gatehouse app.py';

/** `['routes', 2, 'static', 'root']` → `routes[2].static.root`. */
function keyPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
}

class Problems {
  readonly list: string[] = [];
  /** Key paths the schema refused: the checks across sections say nothing more about them. */
  private readonly refused: string[] = [];

  constructor(
    private readonly raw: Record<string, unknown>,
    /** Top-level keys set by a flag, reported by the flag's name. */
    private readonly flags: Map<string, string>,
    /** Whether the settings came from a file too (else the app is the APP argument). */
    private readonly fromFile: boolean,
  ) {}

  /** A problem found across sections, unless it is about a key the schema refused already (or one inside it). */
  add(path: readonly PropertyKey[], message: string): void {
    const key = keyPath(path);
    if (!this.refused.some((r) => r === key || key.startsWith(`${r}.`) || key.startsWith(`${r}[`))) this.line(path, message);
  }

  /** Whether the schema refused this key or one inside it. */
  has(path: readonly PropertyKey[]): boolean {
    const key = keyPath(path);
    return this.refused.some((r) => r === key || r.startsWith(`${key}.`) || r.startsWith(`${key}[`));
  }

  private line(path: readonly PropertyKey[], message: string): void {
    const top = String(path[0] ?? '');
    const name = this.flags.get(top) ?? (top === 'app' && !this.fromFile ? 'APP' : keyPath(path));
    let value: unknown = this.raw;
    for (const part of path) value = (value as Record<PropertyKey, unknown> | undefined)?.[part];
    const got = value === undefined || typeof value === 'object' ? '' : ` (got ${JSON.stringify(value)})`;
    this.list.push(`${name || 'config'}: ${message}${got}`);
  }

  addZod(issues: readonly z.core.$ZodIssue[]): void {
    for (const issue of issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) {
          this.refused.push(keyPath([...issue.path, key]));
          this.list.push(`${keyPath([...issue.path, key])}: unknown setting`);
        }
      } else if (issue.code === 'invalid_union' && issue.errors.length > 0 && !issue.message.startsWith('must')) {
        // A union (e.g. a route's host, string or list): report the first alternative's reasons.
        this.addZod(issue.errors[0]!.map((inner) => ({ ...inner, path: [...issue.path, ...inner.path] })));
      } else {
        this.refused.push(keyPath(issue.path));
        // A refused record key (an app's name) says why in its inner issue.
        this.line(issue.path, issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message);
      }
    }
  }

  throwIfAny(): void {
    if (this.list.length === 0) return;
    if (this.list.length === 1) throw new GatehouseError('GH_ERR_CONFIG', this.list[0]!);
    throw new GatehouseError('GH_ERR_CONFIG', `${this.list.length} problems in the configuration:`, this.list.map((p) => `  ${p}`).join('\n'));
  }
}

/** The list settings: a config file may give one of them as a string (`bind = "127.0.0.1:8000"`, `forwarded_allow_ips = "10.0.0.1,10.0.0.2"`), as gunicorn's does. */
const LISTS = OPTIONS.filter((o) => o.kind === 'list' || o.kind === 'paths');

/** The file's list settings given as a string, at the top level or in an app's table, as their items. */
function listsFromStrings(raw: Record<string, unknown>): void {
  const tables = [raw, ...Object.values(isTable(raw.apps) ? raw.apps : {})].filter(isTable);
  for (const t of tables) {
    for (const option of LISTS) {
      const value = t[option.key];
      if (typeof value === 'string') t[option.key] = listItems(option, [value]);
    }
  }
}

const isTable = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object';

function readConfigFile(file: string): Record<string, unknown> {
  const foreign = /\.py$/.test(file) ? "gunicorn's Python config" : /\.(ini|ya?ml|xml)$/.test(file) ? "uWSGI's config" : null;
  if (foreign !== null) {
    throw new GatehouseError('GH_ERR_CONFIG', `--config: ${file} looks like ${foreign}; gatehouse's config file is TOML (README: Config file), and the same settings are its flags (--bind, --workers, --access-logfile...: gatehouse --help)`);
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new GatehouseError('GH_ERR_CONFIG', `--config: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const raw = parseToml(text) as Record<string, unknown>;
    listsFromStrings(raw);
    return raw;
  } catch (err) {
    if (err instanceof TomlError) {
      const first = err.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '');
      throw new GatehouseError('GH_ERR_CONFIG', `${file}:${err.line}:${err.column}: ${first}`);
    }
    throw err;
  }
}

/** Settings from the command line (and the file it names) → the site, or GH_ERR_CONFIG with every problem. */
export function loadSite(cliSettings: Record<string, unknown>, flags: Map<string, string>, fromEnv: ReturnType<typeof envSettings> = envSettings()): Site {
  const { config: file, ...fromCli } = cliSettings as { config?: string } & Record<string, unknown>;
  const given = file === undefined ? fromCli : { ...readConfigFile(file), ...fromCli };
  // The environment's settings come under the file's and the flags' (any listener or socket they give outdoes PORT).
  const listening = ['listeners', 'uwsgi_socket', 'fastcgi_socket', 'scgi_socket'].some((k) => given[k] !== undefined);
  const raw: Record<string, unknown> = { ...given };
  const named = new Map(flags);
  for (const [key, value] of Object.entries(fromEnv.settings)) {
    if (given[key] !== undefined || (key === 'bind' && listening)) continue;
    raw[key] = value;
    named.set(key, fromEnv.names.get(key)!);
  }
  // --bind on the command line replaces the file's listeners, as any flag replaces what the file says.
  if (fromCli.bind !== undefined) delete raw.listeners;
  const base = file === undefined ? process.cwd() : dirname(resolve(file));
  const problems = new Problems(raw, named, file !== undefined);
  const schema = configSchema(base);
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    problems.addZod(parsed.error.issues);
    // The checks across sections still run on what did parse, so every problem shows at once.
    const rest = salvage(raw, parsed.error.issues);
    const reparsed = schema.safeParse(rest.raw);
    if (reparsed.success) resolveSite(reparsed.data, base, problems, rest.routeIndex);
    problems.throwIfAny();
  }
  const site = resolveSite(parsed.data!, base, problems);
  problems.throwIfAny();
  if (file !== undefined) site.file = resolve(file);
  return deepFreeze(site);
}

const APP_KEYS = Object.keys(appSchema('/').shape) as (keyof Config)[];

/**
 * Where the one app of a site without routes is mounted: at `/`, or under the
 * SCRIPT_NAME in its --env or gatehouse's own environment, as gunicorn does
 * (`SCRIPT_NAME=/app gunicorn ...`): requests below it reach the app with
 * that SCRIPT_NAME, others get 404.
 */
function mountOf(app: AppSettings, problems: Problems): string {
  const fromEnv = app.env.SCRIPT_NAME !== undefined;
  const name = (fromEnv ? app.env.SCRIPT_NAME : process.env.SCRIPT_NAME) ?? '';
  if (name === '' || name === '/') return '/';
  if (!name.startsWith('/')) {
    problems.add(fromEnv ? ['env'] : ['app'], `SCRIPT_NAME must be a path starting with /, got ${JSON.stringify(name)}${fromEnv ? '' : ' (from the environment)'}`);
    return '/';
  }
  return name.replace(/\/+$/, '');
}

/** `routeIndex`: the routes' indices in the file, when some were left out (see salvage.ts). */
function resolveSite(settings: Config, base: string, problems: Problems, routeIndex?: readonly number[]): Site {
  const topApp: Record<string, unknown> = {};
  for (const key of APP_KEYS) if (settings[key] !== undefined && key !== 'app') topApp[key] = settings[key];

  const apps: AppSettings[] = [];
  if (settings.app !== undefined) {
    if (settings.apps?.main) problems.add(['apps', 'main'], 'the top-level app is named main already; give this one another name');
    apps.push({ ...APP_DEFAULTS, chdir: base, ...topApp, app: settings.app, name: 'main' });
  }
  for (const [name, own] of Object.entries(settings.apps ?? {})) {
    const merged = { ...APP_DEFAULTS, chdir: base, ...topApp, ...own, name } as AppSettings;
    if (own.app === undefined) problems.add(['apps', name, 'app'], APP_MISSING);
    apps.push(merged);
  }

  const routes: RouteSettings[] = [...settings.static, ...settings.proxy, ...(settings.routes ?? [])];
  if (settings.routes === undefined) {
    if (apps.length === 1) routes.push({ path: mountOf(apps[0]!, problems), app: apps[0]!.name });
    else if (apps.length > 1) problems.add(['routes'], `with several apps (${apps.map((a) => a.name).join(', ')}), routes must say which requests go to which`);
    else if (routes.length === 0 && !problems.has(['apps']) && !problems.has(['static']) && !problems.has(['proxy'])) problems.add(['app'], APP_NEEDED);
  }
  for (const [i, route] of (settings.routes ?? []).entries()) {
    if (route.app !== undefined && !apps.some((a) => a.name === route.app)) {
      problems.add(['routes', routeIndex?.[i] ?? i, 'app'], `no app named ${JSON.stringify(route.app)} (apps: ${apps.map((a) => a.name).join(', ') || 'none'})`);
    }
  }

  const listeners: ListenerSettings[] = [];
  // One of them refused is left out: no telling whether they would pair.
  const pairRefused = problems.has(['certfile']) || problems.has(['keyfile']);
  if (!pairRefused && (settings.certfile === undefined) !== (settings.keyfile === undefined)) {
    problems.add([settings.certfile === undefined ? 'keyfile' : 'certfile'], '--certfile and --keyfile go together');
  } else if (!pairRefused && settings.certfile !== undefined && settings.keyfile !== undefined) {
    const problem = keyPairProblem(settings.certfile, settings.keyfile);
    if (problem) problems.add(['certfile'], problem);
  }
  const gateways = (['uwsgi', 'fastcgi', 'scgi'] as const).flatMap((protocol) => settings[`${protocol}_socket`].map((bind) => ({ bind, protocol })));
  const binds = settings.bind ?? (settings.listeners || gateways.length > 0 ? [] : ['127.0.0.1:8000']);
  for (const bind of binds) {
    listeners.push({ bind, certfile: settings.certfile, keyfile: settings.keyfile, tls_min_version: '1.2', http2: true, redirect_https: false, protocol: 'http' });
  }
  for (const { bind, protocol } of gateways) {
    listeners.push({ bind, protocol, chmod: settings.chmod_socket, tls_min_version: '1.2', http2: true, redirect_https: false });
  }
  listeners.push(...(settings.listeners ?? []));
  return { settings, listeners, apps, routes };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
