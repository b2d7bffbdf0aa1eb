/**
 * At most `max` connections to one back end at once (nginx's `max_conns`
 * with a queue): past it requests wait, in order, for one to be released.
 * What it is for: php-fpm keeps a kept-alive connection's child for that
 * connection, so connections past its children would wait unserved in its
 * listen queue; queued here they take the next free connection instead.
 */
/** What cancels a wait that is over (or never began). */
const NOTHING_TO_CANCEL = (): void => {};

export class ConnectionLimit {
  private open = 0;
  private readonly waiting: Array<() => void> = [];

  /** 0: no limit. */
  constructor(private readonly max: number) {}

  /** Runs `go` as soon as a connection may be used; returns what cancels the wait (a no-op once `go` ran). */
  acquire(go: () => void): () => void {
    if (this.max === 0 || this.open < this.max) {
      this.open++;
      go();
      return NOTHING_TO_CANCEL;
    }
    this.waiting.push(go);
    return () => {
      const at = this.waiting.indexOf(go);
      if (at >= 0) this.waiting.splice(at, 1);
    };
  }

  /** A connection acquired is no longer used: the next waiting request gets it. */
  release(): void {
    const next = this.waiting.shift();
    if (next !== undefined) next();
    else this.open--;
  }
}
