#!/usr/bin/env -S node --max-semi-space-size=4
/**
 * `gatehouse [options] APP`. V8's heap settings first, before the program's
 * modules are even read (heap-settings.ts says why), then the program: main.ts.
 * The first line gives node the young generation's cap, which V8 reads only
 * when the heap is made (the bench reads the flags from there too).
 */
import './heap-settings.js';

await import('./main.js');
