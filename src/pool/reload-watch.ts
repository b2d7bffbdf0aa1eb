/**
 * What triggers a graceful reload besides SIGHUP: `--reload-on-touch FILE`
 * (mod_wsgi's "touch the WSGI file") and `--reload` (development: any .py
 * change under the app's directories, debounced).
 */
import { watch, watchFile, unwatchFile, type FSWatcher, type Stats } from 'node:fs';
import type { Logger } from '../log/logger.js';

const DEBOUNCE_MS = 300;

export interface ReloadWatchOptions {
  touchFile?: string;
  /** Directories whose .py files trigger a reload (empty: no watching). */
  sourceDirs: string[];
}

/** Starts watching; returns a function that stops it. */
export function watchForReload(opts: ReloadWatchOptions, reload: (reason: string) => void, logger: Logger): () => void {
  const stops: Array<() => void> = [];
  if (opts.touchFile !== undefined) {
    const file = opts.touchFile;
    // Polling stat, not inotify: works for a file replaced by a deploy and on network filesystems.
    const onChange = (now: Stats, before: Stats) => {
      if (now.mtimeMs !== before.mtimeMs && now.mtimeMs !== 0) reload(`${file} was touched`);
    };
    watchFile(file, { interval: 500, persistent: false }, onChange);
    stops.push(() => unwatchFile(file, onChange));
  }
  let timer: NodeJS.Timeout | null = null;
  let changed = '';
  for (const dir of opts.sourceDirs) {
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, { recursive: true, persistent: false }, (_event, name) => {
        if (name === null || !name.endsWith('.py')) return;
        changed = name;
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => reload(`${changed} changed`), DEBOUNCE_MS);
      });
    } catch (err) {
      logger.warning(`--reload: cannot watch ${dir}: ${(err as Error).message}`);
      continue;
    }
    watcher.on('error', (err) => logger.warning(`--reload: watching ${dir} failed: ${err.message}`));
    stops.push(() => watcher.close());
  }
  return () => {
    if (timer) clearTimeout(timer);
    for (const stop of stops) stop();
  };
}
