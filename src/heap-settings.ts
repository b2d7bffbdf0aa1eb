/**
 * V8's heap settings for the front, applied when this module is evaluated:
 * cli.ts imports it before it loads the rest, whose reading already grows the heap.
 *
 * The young generation stays at its initial size (two 1 MiB semi-spaces)
 * instead of growing to 2 × 16 MiB after the first burst of requests or
 * connections, which it then keeps. A front's garbage is per request and dies
 * young, so a scavenge of the small space costs about what it does in the big
 * one per request, in pauses a sixteenth as long; and the server's idle
 * memory is some 25 MiB smaller. A semi-space flag given to node (command line
 * or NODE_OPTIONS) is left to rule instead.
 */
import { setFlagsFromString } from 'node:v8';

const given = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`;
if (!given.includes('semi-space')) setFlagsFromString('--semi-space-growth-factor=1');
