#!/bin/sh
// 2>/dev/null; exec node --max-semi-space-size=4 "$0" "$@"
/**
 * `gatehouse [options] APP`. V8's heap settings first, before the program's
 * modules are even read (heap-settings.ts says why), then the program: main.ts.
 *
 * The first two lines give node the young generation's cap, which V8 reads
 * only when the heap is made: run as a command, sh reads the second line
 * (`//` fails quietly, then exec replaces sh with node, the same process);
 * node reads it as a comment. `env -S node FLAGS` would be one line, but
 * BusyBox's env (Alpine) has no -S. The bench reads the flags from there too.
 */
import './heap-settings.js';

await import('./main.js');
