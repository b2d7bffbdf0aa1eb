/** Which keys carry which tag (Cache-Tag / Surrogate-Key), for invalidation by tag. */
export class TagIndex {
  private readonly keys = new Map<string, Set<string>>();

  add(key: string, tags: readonly string[]): void {
    for (const tag of tags) {
      let set = this.keys.get(tag);
      if (set === undefined) this.keys.set(tag, (set = new Set()));
      set.add(key);
    }
  }

  /** A key is gone from the store. */
  remove(key: string, tags: readonly string[]): void {
    for (const tag of tags) {
      const set = this.keys.get(tag);
      set?.delete(key);
      if (set?.size === 0) this.keys.delete(tag);
    }
  }

  /** The keys tagged `tag`, as a copy (deleting them edits the index). */
  keysOf(tag: string): string[] {
    return [...(this.keys.get(tag) ?? [])];
  }

  clear(): void {
    this.keys.clear();
  }
}
