/** `--user` / `--group`: names or numeric ids, looked up in /etc/passwd and /etc/group (no native addon needed). */
import { readFileSync } from 'node:fs';
import { configError } from '../errors.js';

function lookup(file: string, name: string): string[] | undefined {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name || fields[2] === name) return fields;
  }
  return undefined;
}

/** `keys` names the settings in errors: `--` for flags, `apps.NAME.` for an app of the config file. */
export function resolveUser(user: string | undefined, group: string | undefined, keys = '--'): { uid?: number; gid?: number } {
  if (user === undefined && group === undefined) return {};
  if (process.getuid?.() !== 0) {
    throw configError(user !== undefined ? `${keys}user` : `${keys}group`, user ?? group, 'switching the workers to another user needs gatehouse to start as root');
  }
  let uid: number | undefined;
  let gid: number | undefined;
  if (user !== undefined) {
    const entry = lookup('/etc/passwd', user);
    if (entry === undefined && !/^\d+$/.test(user)) throw configError(`${keys}user`, user, 'no such user');
    uid = entry ? Number(entry[2]) : Number(user);
    if (entry) gid = Number(entry[3]);
  }
  if (group !== undefined) {
    const entry = lookup('/etc/group', group);
    if (entry === undefined && !/^\d+$/.test(group)) throw configError(`${keys}group`, group, 'no such group');
    gid = entry ? Number(entry[2]) : Number(group);
  }
  return { uid, gid };
}
