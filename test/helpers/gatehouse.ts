/** Where things are, and which optional Debian packages this machine has (tests skip without them). */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CLI = `${ROOT}dist/src/cli.js`;
export const APPS = `${ROOT}test/apps`;
/** Debian's interpreter, where python3-flask and python3-django are installed. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

/** True when Debian's Python has the module (tests that need it skip otherwise). */
export function hasSystemModule(module: string): boolean {
  if (!existsSync(SYSTEM_PYTHON)) return false;
  return spawnSync(SYSTEM_PYTHON, ['-c', `import ${module}`]).status === 0;
}

export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}
