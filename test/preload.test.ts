import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPS } from './helpers/gatehouse.js';
import { launch, runCli } from './helpers/launch.js';
import { childPids, isAlive } from './helpers/processes.js';
import { waitUntil } from './helpers/wait.js';
import { failures, runLoad, describeLoad } from './helpers/load.js';

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'gh-preload-'));
  const env = { PRELOAD_VERSION_FILE: join(dir, 'version'), PRELOAD_IMPORTS: join(dir, 'imports') };
  writeFileSync(env.PRELOAD_VERSION_FILE, 'v1');
  const imports = () => readFileSync(env.PRELOAD_IMPORTS, 'utf8').trim().split('\n').length;
  return { dir, env, imports };
}

async function answers(url: string, n: number): Promise<string[]> {
  return Promise.all(Array.from({ length: n }, () => fetch(url).then((r) => r.text())));
}

test('--preload imports the app once and forks the workers from that template', async () => {
  const { dir, env, imports } = setup();
  const gh = await launch([`${APPS}/preload_app.py`, '--workers', '3', '--preload'], { env });
  try {
    assert.equal(imports(), 1, 'one import for three workers');
    const [template, ...others] = childPids(gh.pid);
    assert.equal(others.length, 0, 'the front has one Python child: the template');
    const workers = childPids(template!);
    assert.equal(workers.length, 3);
    const seen = await answers(gh.url, 12);
    for (const a of seen) {
      const [version, , ppid] = a.split(' ');
      assert.equal(version, 'v1');
      assert.equal(Number(ppid), template, 'a worker is a child of the template');
    }
    // A worker that dies is replaced by a new fork: no new import.
    process.kill(workers[0]!, 'SIGKILL');
    assert.ok(await waitUntil(() => childPids(template!).length === 3 && !childPids(template!).includes(workers[0]!), 5000));
    assert.equal(imports(), 1);
  } finally {
    const template = childPids(gh.pid)[0];
    assert.equal(await gh.stop(), 0);
    if (template !== undefined) assert.ok(await waitUntil(() => !isAlive(template), 3000), 'the template is gone');
    assert.ok(readdirSync(tmpdir()).every((f) => !f.startsWith('gatehouse-fork-') || !readdirSync(join(tmpdir(), f)).length), 'no fork socket left');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--preload: SIGHUP under load makes a new template with the new code, and broken code keeps the old one', async () => {
  const { dir, env, imports } = setup();
  const gh = await launch([`${APPS}/preload_app.py`, '--workers', '2', '--preload'], { env });
  try {
    const oldTemplate = childPids(gh.pid)[0]!;
    const load = runLoad({ url: gh.url, concurrency: 8, durationMs: 3000 });
    await new Promise((r) => setTimeout(r, 700));
    writeFileSync(env.PRELOAD_VERSION_FILE, 'v2');
    gh.proc.kill('SIGHUP');
    const result = await load;
    assert.equal(failures(result), 0, describeLoad(result));
    assert.ok(await waitUntil(() => !isAlive(oldTemplate), 5000), 'the old template exits once its workers are gone');
    assert.equal(imports(), 2, 'the new template imported the new code once');
    assert.ok((await answers(gh.url, 6)).every((a) => a.startsWith('v2 ')));

    const template = childPids(gh.pid)[0]!;
    writeFileSync(env.PRELOAD_VERSION_FILE, 'broken');
    gh.proc.kill('SIGHUP');
    await gh.waitFor(/Reload failed[^]*simulated broken deploy/, 10000);
    assert.ok((await answers(gh.url, 6)).every((a) => a.startsWith('v2 ')), 'the old workers keep serving');
    // The broken template may still be on its way out when the failure is logged.
    const onlyTemplate = () => childPids(gh.pid).join() === String(template);
    assert.ok(await waitUntil(onlyTemplate, 5000), `the working template stays, alone: ${childPids(gh.pid).join()} (template ${template})`);
  } finally {
    await gh.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--preload with a TMPDIR that cannot hold the template\'s socket: a clear boot failure at start, a failed reload later (the old workers serve on)', async () => {
  const { dir, env } = setup();
  const socketTmp = join(dir, 'tmp');
  mkdirSync(socketTmp);
  const gh = await launch([`${APPS}/preload_app.py`, '--workers', '1', '--preload'], { env: { ...env, TMPDIR: socketTmp } });
  try {
    rmSync(socketTmp, { recursive: true, force: true });
    process.kill(gh.pid, 'SIGHUP');
    await gh.waitFor(/Reload failed, the running workers keep serving: cannot make the --preload template's socket directory in .* \(TMPDIR\): ENOENT/, 5000);
    assert.equal((await fetch(gh.url)).status, 200);
    mkdirSync(socketTmp);
    process.kill(gh.pid, 'SIGHUP');
    await gh.waitFor(/Reload complete/, 15000);
    assert.equal((await fetch(gh.url)).status, 200);
  } finally {
    await gh.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const r = await runCli([`${APPS}/preload_app.py`, '--workers', '1', '--preload', '--bind', '127.0.0.1:0'], { env: { ...env, TMPDIR: join(dir, 'gone') } });
  assert.equal(r.code, 3);
  assert.match(r.stderr, /gatehouse: error: GH_ERR_WORKER_BOOT: cannot make the --preload template's socket directory in .*gone \(TMPDIR\): ENOENT/);
});

