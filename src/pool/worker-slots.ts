/**
 * Sticky dispatch (an app's `sticky` setting): each worker of the pool
 * holds a slot, 0 to the pool's target size − 1, which its replacement takes
 * over (a crash, --max-requests, a reload), and a client's requests go to the
 * worker in slot hash(client address) mod target, as nginx's `ip_hash` sends
 * them to one upstream. Apps that keep a client's session in one process's
 * memory (Socket.IO's long-polling) then work with several workers.
 */

/** Slots of workers being spawned or serving in `generation` (retiring ones give theirs up). */
export function freeSlot(workers: readonly { generation: number; slot: number; retiredFor: string | null; state: string }[], generation: number): number {
  const used = new Set<number>();
  for (const w of workers) if (w.generation === generation && w.retiredFor === null && w.state !== 'dead') used.add(w.slot);
  let slot = 0;
  while (used.has(slot)) slot++;
  return slot;
}

/** A client's affinity: the FNV-1a hash of its address (any two addresses spread apart). */
export function affinityOf(client: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < client.length; i++) h = Math.imul(h ^ client.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
