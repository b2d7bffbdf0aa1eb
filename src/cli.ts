#!/usr/bin/env node
/**
 * `gatehouse [options] APP`. V8's heap settings first, before the program's
 * modules are even read (heap-settings.ts says why), then the program: main.ts.
 */
import './heap-settings.js';

await import('./main.js');
