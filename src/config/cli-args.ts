/** Command-line flags, generated from the schema's OPTIONS table (node:util parseArgs does the parsing). */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { GatehouseError } from '../errors.js';
import { OPTIONS, parseSize, validateConfig, type Config, type OptionSpec } from './schema.js';

export type CliResult = { kind: 'run'; config: Config } | { kind: 'help' } | { kind: 'version' };

function convert(option: OptionSpec, raw: string | string[]): { value?: unknown; problem?: string } {
  const text = Array.isArray(raw) ? raw[raw.length - 1]! : raw;
  switch (option.kind) {
    case 'list':
      return { value: (raw as string[]).flatMap((v) => (option.key === 'pythonpath' ? v.split(',') : [v])) };
    case 'flag':
      return { value: true };
    case 'int':
    case 'number':
    case 'seconds': {
      const n = Number(text);
      if (text.trim() === '' || !Number.isFinite(n)) return { problem: 'must be a number' };
      return { value: n };
    }
    case 'size': {
      const n = parseSize(text);
      return n === undefined ? { problem: 'must be a size such as 1048576, 64k, 10m or 1g' } : { value: n };
    }
    default:
      return { value: text };
  }
}

export function parseCli(argv: readonly string[]): CliResult {
  const options: NonNullable<ParseArgsConfig['options']> = {
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'v' },
  };
  for (const o of OPTIONS) {
    options[o.flag] = { type: o.kind === 'flag' ? 'boolean' : 'string', multiple: true, ...(o.short ? { short: o.short } : {}) };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (err) {
    // parseArgs says e.g. "Unknown option '--wrkers'"; keep its words, drop its advice about '--'.
    const message = (err as Error).message.split(/\.(?:\s|$)/)[0]!;
    throw new GatehouseError('GH_ERR_CONFIG', `${message} (see gatehouse --help)`);
  }
  const values = parsed.values as Record<string, string[] | boolean | undefined>;
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };

  if (parsed.positionals.length > 1) {
    throw new GatehouseError('GH_ERR_CONFIG', `expected one APP, got ${parsed.positionals.length}: ${parsed.positionals.join(' ')}`);
  }
  const raw: Record<string, unknown> = {};
  if (parsed.positionals[0] !== undefined) raw.app = parsed.positionals[0];
  const problems: string[] = [];
  for (const o of OPTIONS) {
    const given = values[o.flag];
    if (!Array.isArray(given)) continue;
    const { value, problem } = convert(o, given as string[]);
    if (problem) problems.push(`--${o.flag}: ${problem} (got ${JSON.stringify(given[given.length - 1])})`);
    else raw[o.key] = value;
  }
  const { config, problems: schemaProblems } = validateConfig(raw);
  problems.push(...schemaProblems);
  if (problems.length > 0 || !config) throw new GatehouseError('GH_ERR_CONFIG', problems.join('; '));
  return { kind: 'run', config };
}

export function helpText(): string {
  const lines = [
    'Usage: gatehouse [options] APP',
    '',
    'Serve a WSGI application from a supervised pool of Python workers.',
    '',
    'APP is module:callable (module:factory() calls a factory), or a path to a .py',
    "file whose `application` is served (file.py:name picks another name).",
    '',
    'Options:',
  ];
  for (const o of OPTIONS) {
    const names = `${o.short ? `-${o.short}, ` : '    '}--${o.flag}${o.arg ? ` ${o.arg}` : ''}`;
    lines.push(`  ${names.padEnd(32)} ${o.doc}`);
  }
  lines.push(`  ${'-v, --version'.padEnd(32)} Print the version and exit.`);
  lines.push(`  ${'-h, --help'.padEnd(32)} Print this help and exit.`);
  return lines.join('\n') + '\n';
}
