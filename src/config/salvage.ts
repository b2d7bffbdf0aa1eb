/**
 * What remains of a configuration the schema refused, so that the checks
 * across sections (site.ts: a route naming an unknown app, several apps
 * without routes, ...) still run on the parts that did parse and a user sees
 * every problem in one go, not one batch after another.
 */
import type { z } from 'zod';

export interface Salvaged {
  /** The raw settings without what was refused, to parse again. */
  raw: Record<string, unknown>;
  /** For each route kept, its index in the file's `routes`. */
  routeIndex: number[];
}

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Drops what each issue points at: a top-level key (its default applies), an
 * entry of a list (a route, a listener, a --static URL=DIR), an entry of a
 * table (an `env` variable, an app whose name is refused). An app refused for
 * one of its settings stays without that setting, so routes naming it still
 * find it.
 */
export function salvage(raw: Table, issues: readonly z.core.$ZodIssue[]): Salvaged {
  const copy = structuredClone(raw);
  const dropped = new Map<string, Set<number>>();
  for (const issue of issues) {
    const paths = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...issue.path, k]) : [issue.path];
    for (const [top, entry, setting] of paths) {
      if (typeof top !== 'string') continue;
      const section = copy[top];
      if (top === 'apps' && typeof entry === 'string' && issue.code !== 'invalid_key' && isTable(section)) {
        const app = section[entry];
        if (isTable(app) && typeof setting === 'string') delete app[setting];
        else section[entry] = {};
      } else if (Array.isArray(section) && typeof entry === 'number') {
        dropped.set(top, (dropped.get(top) ?? new Set()).add(entry));
      } else if (isTable(section) && typeof entry === 'string') {
        delete section[entry];
      } else {
        delete copy[top];
      }
    }
  }
  let routeIndex = Array.isArray(copy.routes) ? copy.routes.map((_, i) => i) : [];
  for (const [top, indices] of dropped) {
    if (!Array.isArray(copy[top])) continue; // dropped whole by another issue
    copy[top] = (copy[top] as unknown[]).filter((_, i) => !indices.has(i));
    if (top === 'routes') routeIndex = routeIndex.filter((i) => !indices.has(i));
  }
  return { raw: copy, routeIndex };
}
