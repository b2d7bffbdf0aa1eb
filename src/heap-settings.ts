/**
 * V8's heap settings for the front, applied when this module is evaluated:
 * cli.ts imports it before it loads the rest, whose reading already grows the heap.
 *
 * The young generation stays at its initial size (two 1 MiB semi-spaces)
 * instead of growing to two 16 MiB ones after the first burst of requests or
 * connections, and keeping them: a front's idle memory is mostly that space
 * otherwise. A front's garbage is per request and dies young, so scavenges
 * come more often but each is shorter; the price is a little CPU per request
 * (the README says how much). A semi-space flag given to node (command line
 * or NODE_OPTIONS, e.g. --max-semi-space-size=16 for V8's default) is left to
 * rule instead.
 */
import { setFlagsFromString } from 'node:v8';

const given = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`;
if (!given.includes('semi-space')) setFlagsFromString('--semi-space-growth-factor=1');
