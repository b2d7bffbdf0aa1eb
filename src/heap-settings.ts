/**
 * V8's heap settings for the front, applied when this module is evaluated:
 * cli.ts imports it before it loads the rest, whose reading already grows the heap.
 *
 * The young generation is capped at two 4 MiB semi-spaces, not V8's two
 * 16 MiB ones, which it would take after the first burst of requests or
 * connections and keep: a front's idle memory is otherwise mostly that
 * space, and a front's garbage dies young, so 4 MiB is as fast under load.
 * That cap can only be given on node's command line (V8 sizes the heap
 * before any code runs): the `gatehouse` command's first lines do
 * (cli.ts). Started another way without a semi-space flag, the young
 * generation is kept at its initial two 1 MiB semi-spaces instead, which
 * saves the same memory but costs HTTP/2 answers some CPU
 * (docs/performance-log.md says how much). A semi-space flag given to node
 * (command line or NODE_OPTIONS, e.g. --max-semi-space-size=16 for V8's
 * default) is left to rule.
 *
 * Scavenges run on the main thread alone. A front's young garbage dies
 * young (about 2% survives a scavenge under load), so V8's helper threads
 * have little to share, and on a machine whose cores the workers keep busy
 * the pause waited for them to be scheduled: docs/performance-log.md gives
 * the figures.
 */
import { setFlagsFromString } from 'node:v8';

const given = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`;
if (!given.includes('semi-space')) setFlagsFromString('--semi-space-growth-factor=1');
if (!given.includes('parallel-scavenge')) setFlagsFromString('--no-parallel-scavenge');
