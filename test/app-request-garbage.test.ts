/**
 * An app request's records (head, response writer, exchange) must die young:
 * the front's scavenges, read from V8's --trace-gc-nvp lines, find almost
 * nothing of them alive under keep-alive load. Something linking each
 * request to the next (the pool's id Map once did, through V8's chain of
 * outgrown Map tables) keeps them all until a full GC, and this share jumps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { APPS } from './helpers/gatehouse.js';
import { launch } from './helpers/launch.js';
import { describeLoad, failures, runLoad } from './helpers/load.js';

/** Of the bytes allocated in the young generation, the share that survived its scavenges. */
function scavengeSurvival(trace: string): { allocated: number; survived: number; scavenges: number } {
  let allocated = 0;
  let survived = 0;
  let scavenges = 0;
  for (const line of trace.split('\n')) {
    if (!line.includes('gc=s ')) continue;
    scavenges++;
    allocated += Number(/ allocated=(\d+)/.exec(line)![1]);
    survived += Number(/ new_space_survived=(\d+)/.exec(line)![1]);
  }
  return { allocated, survived, scavenges };
}

test("under keep-alive load, an app request's records are not kept past the scavenges after it", async () => {
  const gh = await launch([`${APPS}/basic.py:hello`, '--workers', '2'], { nodeArgs: ['--trace-gc-nvp'] });
  try {
    // Warm-up: compiled code, pools and tables at their working size.
    await runLoad({ url: gh.url, concurrency: 50, durationMs: 1000 });
    const from = gh.output().length;
    const load = await runLoad({ url: gh.url, concurrency: 50, durationMs: 3000 });
    assert.equal(failures(load), 0, describeLoad(load));
    const { allocated, survived, scavenges } = scavengeSurvival(gh.output().slice(from));
    assert.ok(scavenges >= 3, `enough scavenges to judge (${scavenges} for ${load.requests} requests)`);
    const share = survived / allocated;
    assert.ok(share < 0.05, `${(share * 100).toFixed(1)}% of ${(allocated / 1e6).toFixed(0)} MB survived ${scavenges} scavenges (${load.requests} requests)`);
  } finally {
    await gh.kill();
  }
});
