/**
 * The level a line a worker printed is labelled with in the error log.
 *
 * A worker's output goes to the error log line by line under its pid (what
 * gunicorn users see on the terminal). Python's logging says the level in
 * the line in its usual formats, and every app warning labelled [ERROR]
 * sends operators looking for errors that are not. So a level named where
 * those formats put it labels the line; any other line keeps its stream's
 * label (stderr: error, stdout: info), as before. `--log-level` then filters
 * the line by its label, as it does the server's own: an app's DEBUG lines
 * show with `--log-level debug`.
 */
import type { LogLevel } from './logger.js';

const NAMED: Record<string, LogLevel> = { DEBUG: 'debug', INFO: 'info', WARNING: 'warning', WARN: 'warning', ERROR: 'error', CRITICAL: 'critical', FATAL: 'critical' };

/**
 * Python's usual formats: logging.basicConfig's `WARNING:name:message`, a
 * level first then a space (`ERROR something`), a bracketed level
 * (`[WARNING] ...`; gunicorn's `[time] [pid] [LEVEL] ...`), Flask's default
 * handler (`[time] ERROR in module: ...`), and a time first (`2026-12-05
 * 10:00:00,123 WARNING ...`).
 */
const LEVEL_AT_START = /^(?:(?:\[[^\]]*\] ){1,2}|\d{4}-\d\d-\d\d[ T][\d:.,]+ )?\[?(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)\b[\]: ]/;
/** The warnings module's `file.py:12: DeprecationWarning: message`. */
const PYTHON_WARNING = /^\S.*:\d+: [A-Za-z]*Warning: /;

export function levelOfOutput(line: string, otherwise: LogLevel): LogLevel {
  const named = LEVEL_AT_START.exec(line);
  if (named !== null) return NAMED[named[1]!]!;
  return PYTHON_WARNING.test(line) ? 'warning' : otherwise;
}
