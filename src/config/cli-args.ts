/** Command-line flags, generated from the OPTIONS table (node:util parseArgs does the parsing). */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { resolve } from 'node:path';
import { GatehouseError } from '../errors.js';
import { flagOf, listItems, OPTIONS, type OptionSpec } from './options.js';
import { insteadOf, translateForeign } from './foreign-flags.js';

/** What the command line asked for: the settings it gives (config keys), and which flag set each. */
export type CliResult =
  | { kind: 'run'; settings: Record<string, unknown>; flags: Map<string, string> }
  | { kind: 'help' }
  | { kind: 'version' };

/** A flag's text as the config key's value (the schema validates it). */
function convert(option: OptionSpec, given: string[]): { value?: unknown; problem?: string } {
  const text = given[given.length - 1]!;
  switch (option.kind) {
    case 'list':
      return { value: listItems(option, given) };
    case 'paths':
      return { value: listItems(option, given).map((p) => resolve(p)) };
    case 'pairs': {
      const env: Record<string, string> = {};
      for (const pair of given) {
        const eq = pair.indexOf('=');
        if (eq <= 0) return { problem: `expected KEY=VALUE (got ${JSON.stringify(pair)})` };
        env[pair.slice(0, eq)] = pair.slice(eq + 1);
      }
      return { value: env };
    }
    case 'path':
      return { value: text === '' || text === '-' ? text : resolve(text) };
    case 'flag':
      return { value: true };
    case 'int':
    case 'number':
    case 'seconds': {
      const n = Number(text);
      if (text.trim() === '' || !Number.isFinite(n)) return { problem: `must be a number (got ${JSON.stringify(text)})` };
      return { value: n };
    }
    default:
      return { value: text };
  }
}

/**
 * `--timeout -1` and `-w -2` as `--timeout=-1` and `--workers=-2`: parseArgs calls a value that
 * starts with a dash ambiguous, where gunicorn's argparse takes a negative number as the value; so
 * joined, the value's own check says what is wrong with it.
 */
function joinNegativeValues(argv: readonly string[], options: NonNullable<ParseArgsConfig['options']>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    const name = arg.startsWith('--') ? arg.slice(2) : /^-[^-]$/.test(arg) ? Object.keys(options).find((n) => options[n]!.short === arg[1]) : undefined;
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

export function parseCli(argv: readonly string[]): CliResult {
  const options: NonNullable<ParseArgsConfig['options']> = {
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'v' },
  };
  for (const o of OPTIONS) {
    options[flagOf(o)] = { type: o.kind === 'flag' ? 'boolean' : 'string', multiple: true, ...(o.short ? { short: o.short } : {}) };
    if (o.alias) options[o.alias] = { type: 'string', multiple: true };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: joinNegativeValues(translateForeign(argv), options), options, allowPositionals: true, strict: true });
  } catch (err) {
    // parseArgs says e.g. "Unknown option '--wrkers'"; keep its words, drop its advice about '--'.
    const message = (err as Error).message.split(/\.(?:\s|$)/)[0]!;
    const flag = /^Unknown option '([^']+)'/.exec(message)?.[1];
    const instead = flag === undefined ? null : insteadOf(flag);
    throw new GatehouseError('GH_ERR_CONFIG', instead === null ? `${message} (see gatehouse --help)` : `${message}: ${instead}`);
  }
  const values = parsed.values as Record<string, string[] | boolean[] | undefined>;
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };

  if (parsed.positionals.length > 1) {
    throw new GatehouseError('GH_ERR_CONFIG', `expected one APP, got ${parsed.positionals.length}: ${parsed.positionals.join(' ')}`);
  }
  const settings: Record<string, unknown> = {};
  const flags = new Map<string, string>();
  if (parsed.positionals[0] !== undefined) {
    settings.app = parsed.positionals[0];
    flags.set('app', 'APP');
  }
  const problems: string[] = [];
  for (const o of OPTIONS) {
    const given = o.alias && values[o.alias] ? [...((values[flagOf(o)] as string[] | undefined) ?? []), ...(values[o.alias] as string[])] : values[flagOf(o)];
    if (!Array.isArray(given)) continue;
    const { value, problem } = convert(o, given as string[]);
    if (problem) problems.push(`--${flagOf(o)}: ${problem}`);
    else settings[o.key] = value;
    flags.set(o.key, `--${flagOf(o)}`);
  }
  if (problems.length > 0) throw new GatehouseError('GH_ERR_CONFIG', problems.join('; '));
  return { kind: 'run', settings, flags };
}

/**
 * The settings the environment gives (OptionSpec's `env`: WEB_CONCURRENCY,
 * FORWARDED_ALLOW_IPS, PORT), each named by its variable for errors; flags
 * and the config file override them (loadSite).
 */
export function envSettings(env: NodeJS.ProcessEnv = process.env): { settings: Record<string, unknown>; names: Map<string, string> } {
  const settings: Record<string, unknown> = {};
  const names = new Map<string, string>();
  const problems: string[] = [];
  for (const o of OPTIONS) {
    const text = o.env === undefined ? undefined : env[o.env.name];
    if (o.env === undefined || text === undefined || text === '') continue;
    const { value, problem } = convert(o, [o.env.value?.(text) ?? text]);
    if (problem) problems.push(`${o.env.name} (environment): ${problem}`);
    else settings[o.key] = value;
    names.set(o.key, `${o.env.name} (environment)`);
  }
  if (problems.length > 0) throw new GatehouseError('GH_ERR_CONFIG', problems.join('; '));
  return { settings, names };
}

export function helpText(): string {
  const lines = [
    'Usage: gatehouse [options] APP',
    '       gatehouse --config gatehouse.toml [options]',
    '',
    'Serve a WSGI application from a supervised pool of Python workers.',
    '',
    'APP is module:callable (module:factory() calls a factory), or a path to a .py',
    "file whose `application` is served (file.py:name picks another name).",
    '',
    'Options:',
  ];
  for (const o of OPTIONS) {
    const names = `${o.short ? `-${o.short}, ` : '    '}--${flagOf(o)}${o.alias ? `, --${o.alias}` : ''}${o.arg ? ` ${o.arg}` : ''}`;
    lines.push(`  ${names.padEnd(32)} ${o.doc}`);
  }
  lines.push(`  ${'-v, --version'.padEnd(32)} Print the version and exit.`);
  lines.push(`  ${'-h, --help'.padEnd(32)} Print this help and exit.`);
  return lines.join('\n') + '\n';
}
