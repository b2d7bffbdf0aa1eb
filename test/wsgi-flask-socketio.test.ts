/**
 * Flask-SocketIO (threading mode, Debian's python3-flask-socketio) on
 * threaded WSGI workers: its clients stay on Engine.IO long-polling, where
 * a GET waits while the client posts its next event. With --sticky on two
 * workers both reach the worker holding the session, whichever is less busy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { APPS, hasSystemModule, SYSTEM_PYTHON } from './helpers/gatehouse.js';
import { withServer } from './helpers/launch.js';
import { connectPolling, postWhilePolling } from './helpers/engineio-polling.js';

const APP = `${APPS}/flask_socketio_app.py:app`;

test('--sticky, Flask-SocketIO on two threaded workers: a pending long poll and the next POST reach the worker holding the session', { skip: !hasSystemModule('flask_socketio') && 'needs python3-flask-socketio' }, async () => {
  await withServer([APP, '--python', SYSTEM_PYTHON, '--workers', '2', '--threads', '4', '--sticky'], async (server) => {
    for (let round = 0; round < 3; round++) {
      const { poll, packets } = await connectPolling(server.url, 2);
      const welcome = packets.find((p) => p.startsWith('42'))!;
      const { pid } = (JSON.parse(welcome.slice(2)) as [string, { pid: number }])[1];
      const [heard] = await postWhilePolling(poll, `42["shout","round ${round}"]`);
      assert.deepEqual(JSON.parse(heard!.slice(2)), ['heard', { text: `ROUND ${round}`, pid }]);
    }
  });
});
