/**
 * A Socket.IO client's HTTP long-polling, by hand (Engine.IO protocol 4):
 * what the Socket.IO tests need to open a session, connect its namespace and
 * post an event while a GET is pending, as a browser does.
 */
import assert from 'node:assert/strict';

/** The Engine.IO packets of one long-polling answer (separated by the record separator). */
export async function polled(res: Response): Promise<string[]> {
  assert.equal(res.status, 200);
  return (await res.text()).split('\x1e');
}

/** Opens a long-polling session at `base` (the server's URL) and connects the default namespace: its sid, its polling URL and the packets the connect brought (at least `expect`). */
export async function connectPolling(base: string, expect: number): Promise<{ sid: string; poll: string; packets: string[] }> {
  const [open] = await polled(await fetch(`${base}/socket.io/?EIO=4&transport=polling`));
  assert.match(open!, /^0\{/);
  const { sid } = JSON.parse(open!.slice(1)) as { sid: string };
  const poll = `${base}/socket.io/?EIO=4&transport=polling&sid=${sid}`;
  assert.equal(await (await fetch(poll, { method: 'POST', body: '40' })).text(), 'OK');
  const packets: string[] = [];
  while (packets.length < expect) packets.push(...(await polled(await fetch(poll))));
  return { sid, poll, packets };
}

/** Posts `event` while a GET waits for something to send (as a browser's client does): the packets that GET then brings. */
export async function postWhilePolling(poll: string, event: string): Promise<string[]> {
  const pending = fetch(poll).then(polled);
  await new Promise((r) => setTimeout(r, 100));
  const posted = await fetch(poll, { method: 'POST', body: event });
  assert.equal(posted.status, 200, 'the POST reached the worker holding the session');
  return pending;
}
