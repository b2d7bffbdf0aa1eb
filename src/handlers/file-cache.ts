/**
 * What the static handler knows about the files it serves, kept for a moment
 * (nginx's open_file_cache): where a path really leads, its stat, its
 * validators, and for small files the bytes themselves (and their compressed
 * forms once asked for), so a hot file costs no system call at all.
 *
 * An entry is trusted for VALID_MS, then checked again with a stat: an edited
 * file shows up within that time. Missing files are remembered the same way
 * (precompressed siblings are looked for on every request). Memory is bounded:
 * the least recently used entries go first.
 */
import type { Stats } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import etag from 'etag';
import mime from 'mime-types';
import type { Coding } from '../http/compression.js';

/** How long an entry is believed without a stat (nginx's open_file_cache_valid is 60 s; edits should show sooner). */
export const VALID_MS = 1000;
/** Files up to this size are kept in memory. */
export const MAX_FILE = 64 * 1024;
const MAX_ENTRIES = 10_000;
/** What an entry costs besides its bytes (path, stat, headers), roughly. */
const OVERHEAD = 512;

export interface CachedFile {
  /** The path looked up. */
  readonly path: string;
  /** `file`, `directory`, `other` (a device, a socket...), or why it could not be found (`missing`, `denied`, `error`). */
  readonly kind: 'file' | 'directory' | 'other' | 'missing' | 'denied' | 'error';
  /** Where the path leads, symlinks resolved ('' when not found). */
  readonly real: string;
  readonly stats: Stats | null;
  /** Content-Type by the extension, and the validators, exactly as send makes them. */
  readonly type: string;
  readonly etag: string;
  readonly lastModified: string;
  /** The contents of a small file; null: read it from disk. */
  readonly body: Buffer | null;
  /** Compressed forms of `body`, made on first use. */
  readonly encoded: Partial<Record<Coding, Buffer>>;
  checkedAt: number;
  cost: number;
}

export class FileCache {
  private readonly entries = new Map<string, CachedFile>();
  private readonly loading = new Map<string, Promise<CachedFile>>();
  private total = 0;

  /** `maxBytes` 0: nothing is kept, every request looks at the disk. */
  constructor(private readonly maxBytes: number) {}

  /** The entry for `path` if it was checked less than VALID_MS ago. */
  get(path: string): CachedFile | undefined {
    const entry = this.entries.get(path);
    if (entry === undefined || performance.now() - entry.checkedAt >= VALID_MS) return undefined;
    // Most recently used last: the Map's order is the eviction order.
    this.entries.delete(path);
    this.entries.set(path, entry);
    return entry;
  }

  /** Looks at the disk (a stat; a read for a small file that changed) and remembers what it found. */
  load(path: string): Promise<CachedFile> {
    let p = this.loading.get(path);
    if (p === undefined) {
      p = this.check(path).finally(() => this.loading.delete(path));
      this.loading.set(path, p);
    }
    return p;
  }

  /** Keeps a compressed form of a cached body. */
  addEncoded(entry: CachedFile, coding: Coding, bytes: Buffer): void {
    entry.encoded[coding] = bytes;
    if (this.entries.get(entry.path) !== entry) return;
    entry.cost += bytes.length;
    this.total += bytes.length;
    this.evict();
  }

  private async check(path: string): Promise<CachedFile> {
    const old = this.entries.get(path);
    let entry: CachedFile;
    try {
      const real = await realpath(path);
      const stats = await stat(real);
      if (old !== undefined && old.real === real && old.stats !== null && same(old.stats, stats)) {
        old.checkedAt = performance.now();
        this.store(old);
        return old;
      }
      let body: Buffer | null = null;
      if (stats.isFile() && stats.size <= MAX_FILE && this.maxBytes > 0) {
        body = await readFile(real);
        // Changed while we read: serve it from disk this time; the next check reads it again.
        if (body.length !== stats.size) body = null;
      }
      const kind = stats.isFile() ? 'file' : stats.isDirectory() ? 'directory' : 'other';
      entry = found(path, kind, real, stats, body);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const kind = code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG' || code === 'ELOOP' ? 'missing' : code === 'EACCES' ? 'denied' : 'error';
      entry = found(path, kind, '', null, null);
    }
    this.store(entry);
    return entry;
  }

  private store(entry: CachedFile): void {
    if (this.maxBytes === 0) return;
    const old = this.entries.get(entry.path);
    if (old !== undefined) {
      this.total -= old.cost;
      this.entries.delete(entry.path);
    }
    this.entries.set(entry.path, entry);
    this.total += entry.cost;
    this.evict();
  }

  private evict(): void {
    for (const [path, entry] of this.entries) {
      if (this.total <= this.maxBytes && this.entries.size <= MAX_ENTRIES) return;
      this.entries.delete(path);
      this.total -= entry.cost;
    }
  }
}

function found(path: string, kind: CachedFile['kind'], real: string, stats: Stats | null, body: Buffer | null): CachedFile {
  return {
    path,
    kind,
    real,
    stats,
    type: mime.contentType(extname(path)) || 'application/octet-stream',
    etag: stats === null ? '' : etag(stats),
    lastModified: stats === null ? '' : stats.mtime.toUTCString(),
    body,
    encoded: {},
    checkedAt: performance.now(),
    cost: OVERHEAD + path.length + (body?.length ?? 0),
  };
}

/** The same file, unchanged. */
function same(a: Stats, b: Stats): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}
