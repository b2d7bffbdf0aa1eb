/**
 * --preload: the template process new workers are forked from, and the older
 * templates still parents of live workers. A reload starts a new template
 * (new code); an old one is stopped only once its last worker is gone, since
 * its workers die with it.
 */
import type { GatehouseError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { TemplateProcess, type TemplateEvents } from './template-process.js';
import type { WorkerSpawnOptions } from './worker-process.js';

export class PreloadTemplates {
  /** The template new workers are forked from. */
  current: TemplateProcess | null = null;
  private old: TemplateProcess[] = [];

  constructor(
    private readonly spawn: WorkerSpawnOptions,
    private readonly events: TemplateEvents,
    private readonly logger: Logger,
  ) {}

  /** A template for `generation`; the error, the current one kept, when TMPDIR cannot hold its socket. */
  start(generation: number): GatehouseError | null {
    try {
      this.current = new TemplateProcess(this.spawn, generation, this.events, this.logger);
      return null;
    } catch (err) {
      return err as GatehouseError;
    }
  }

  /** A reload: a new template imports the new code; the current one keeps its workers until they retire. */
  replace(generation: number): GatehouseError | null {
    const previous = this.current;
    const failed = this.start(generation);
    if (failed === null && previous !== null) this.old.push(previous);
    return failed;
  }

  /** The new template did not import: go back to the previous one. */
  rollBack(): void {
    this.current = this.old.pop() ?? null;
  }

  /** The current template died: workers still wanted need a new one. */
  restartIfDead(generation: number): GatehouseError | null {
    return this.current?.state === 'dead' ? this.start(generation) : null;
  }

  /** An old template whose workers are all gone is stopped (stopping it earlier would kill them). */
  stopIdle(): void {
    this.old = this.old.filter((t) => {
      if (t.forked.size > 0 && t.state !== 'dead') return true;
      t.stop();
      return false;
    });
  }

  stopAll(): void {
    for (const t of [this.current, ...this.old]) t?.stop();
  }
}
