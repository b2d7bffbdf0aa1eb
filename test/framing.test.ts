/**
 * HTTP/1 framing as RFC 9112 wants it, on both of the front's readers (its
 * own fast path and node:http's llhttp, which takes what the fast path hands
 * over): a table of raw requests in, what the client gets back and what the
 * app saw out. Nothing after a request that ends the connection is read as a
 * request (§9.6); faulty framing is 400 (§6.1, §3.2); a head that can never
 * be read is refused at once, not after the header timeout; a body whose
 * framing breaks off is refused in its turn, after the answers before it; a
 * fragment never reaches the app.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { APPS } from './helpers/gatehouse.js';
import { launch, type Server } from './helpers/launch.js';
import { RawConnection } from './helpers/raw-connection.js';
import { sleep, waitUntil } from './helpers/wait.js';

let gh: Server;

before(async () => {
  gh = await launch([`${APPS}/basic.py:echo_environ`, '--workers', '2', '--access-log', '-']);
});

after(async () => {
  await gh.kill();
});

/** The access log lines written since `from` (an index into the output). */
function logLines(from: number): string[] {
  return gh
    .output()
    .slice(from)
    .split('\n')
    .filter((l) => /" \d{3} /.test(l));
}

/** Sends `bytes`, reads until the server closes (or `ms`), returns everything received. */
async function exchange(bytes: string, ms = 3000): Promise<{ text: string; closed: boolean }> {
  const c = new RawConnection(gh.port);
  await c.connected;
  c.write(Buffer.from(bytes, 'latin1'));
  let closed = true;
  try {
    await c.waitClosed(ms);
  } catch {
    closed = false;
  }
  const text = c.pending.toString('latin1');
  c.close();
  return { text, closed };
}

function statuses(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}

interface Case {
  name: string;
  bytes: string;
  /** The statuses of the responses, in order. */
  answers: number[];
  /** Request lines (method and path) the app saw, per the access log. */
  served: string[];
}

const CASES: Case[] = [
  {
    name: 'HTTP/1.0 without keep-alive, then more bytes: the first is answered, the rest ignored (no 400, no 499)',
    bytes: 'GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n',
    answers: [200],
    served: ['GET /a'],
  },
  {
    name: 'Connection: close on the fast path: a request pipelined after it never reaches the app',
    bytes: 'GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n',
    answers: [200],
    served: ['GET /a'],
  },
  {
    name: 'Connection: close with a body on the fast path: the request after the body is not read',
    bytes: 'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\n',
    answers: [200],
    served: ['POST /a'],
  },
  {
    name: 'Connection: close on the node:http path (a repeated Connection header), then more bytes: answered, the rest ignored',
    bytes: 'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n',
    answers: [200],
    served: ['POST /a'],
  },
  {
    name: 'HTTP/1.0 with Transfer-Encoding: chunked is faulty framing: 400 and close, the app never sees it',
    bytes: 'POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    answers: [400],
    served: [],
  },
  {
    name: 'two Host headers: 400',
    bytes: 'GET /a HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n',
    answers: [400],
    served: [],
  },
  {
    name: 'an HTTP/0.9 request line, whole: 400 at once',
    bytes: 'GET /a\r\n\r\n',
    answers: [400],
    served: [],
  },
  {
    name: 'an HTTP/0.9 request line without the blank line: 400 at once, not after the header timeout',
    bytes: 'GET /a\r\n',
    answers: [400],
    served: [],
  },
  {
    name: 'a head with bare LF line ends: 400 at once, not after the header timeout',
    bytes: 'GET /a HTTP/1.1\nHost: x\n\n',
    answers: [400],
    served: [],
  },
  {
    name: 'a bare LF after a good request line: 400 at once',
    bytes: 'GET /a HTTP/1.1\r\nHost: x\n\n',
    answers: [400],
    served: [],
  },
];

for (const c of CASES) {
  test(c.name, async () => {
    const from = gh.output().length;
    const { text, closed } = await exchange(c.bytes);
    assert.ok(closed, `the server did not close the connection; got ${JSON.stringify(text)}`);
    assert.deepEqual(statuses(text), c.answers, JSON.stringify(text));
    // The access log line is written once the answer is out.
    await sleep(50);
    const lines = logLines(from);
    const served = lines.filter((l) => / 200 /.test(l)).map((l) => /"([A-Z]+ \S+) HTTP/.exec(l)?.[1]);
    assert.deepEqual(served, c.served, lines.join('\n'));
    assert.ok(!lines.some((l) => / 499 /.test(l)), `a request was cut off:\n${lines.join('\n')}`);
  });
}

test('a #fragment in the target reaches neither PATH_INFO nor QUERY_STRING (RAW_URI keeps what was sent)', async () => {
  for (const path of ['/frag/x?q=1#top', '/frag/x#top?q=2']) {
    const { text } = await exchange(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    const environ = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, string>;
    assert.equal(environ.PATH_INFO, '/frag/x');
    assert.equal(environ.QUERY_STRING, path.includes('?q=1') ? 'q=1' : '');
    assert.equal(environ.RAW_URI, path);
  }
});

/** The final status and the environ echo_environ sent back for the one request in `bytes` (after a 100 Continue, if any). */
async function environOf(bytes: string): Promise<{ status: number; environ: Record<string, string> | null }> {
  const { text } = await exchange(bytes);
  const body = text.slice(text.lastIndexOf('\r\n\r\n') + 4);
  return { status: statuses(text).pop() ?? 0, environ: body.startsWith('{') ? (JSON.parse(body) as Record<string, string>) : null };
}

test('any method nginx takes and raw UTF-8 in the target reach the app, on the fast path and on node:http\'s', async () => {
  const cases: Array<[string, string, { method: string; path: string; raw: string; body: string }]> = [
    ['fast path', 'BREW /pot HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { method: 'BREW', path: '/pot', raw: '/pot', body: '' }],
    ['fast path, a body', 'X_SYNC-ALL /caf\xc3\xa9?q=\xe2\x82\xac HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi', { method: 'X_SYNC-ALL', path: '/café', raw: '/café?q=€', body: 'hi' }],
    ['node:http (a repeated Connection), chunked', 'BREW /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n', { method: 'BREW', path: '/café', raw: '/café', body: 'abc' }],
    ['node:http, HTTP/1.0', 'PROPFIND /\xe2\x82\xac HTTP/1.0\r\n\r\n', { method: 'PROPFIND', path: '/€', raw: '/€', body: '' }],
    ['node:http (a repeated Connection), Expect', 'BREW /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\nConnection: close\r\nConnection: close\r\n\r\nz', { method: 'BREW', path: '/e', raw: '/e', body: 'z' }],
  ];
  // PEP 3333: the app gets the bytes as latin-1; as UTF-8 they are what the client meant.
  const utf8 = (latin1: string) => Buffer.from(latin1, 'latin1').toString('utf8');
  for (const [reader, bytes, want] of cases) {
    const { status, environ } = await environOf(bytes);
    assert.equal(status, 200, reader);
    assert.equal(environ!.REQUEST_METHOD, want.method, reader);
    assert.equal(utf8(environ!.PATH_INFO!), want.path, reader);
    assert.equal(utf8(environ!.RAW_URI!), want.raw, reader);
    assert.equal(environ!.body, want.body, reader);
  }
});

test('chunk extensions with whitespace around ";" and "=" (RFC 9112 §7.1.1, as nginx reads them) reach the app as the body alone; the connection goes on', async () => {
  for (const te of ['chunked', 'Chunked']) await spacedExtensions(te);
});

async function spacedExtensions(te: string): Promise<void> {
  const bytes =
    `POST /ext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${te}\r\n\r\n` +
    '5; name=value\r\nhello\r\n6 ;a = "b c"\r\n world\r\n0 ; last\r\n\r\n' +
    'GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
  const from = gh.output().length;
  const { text, closed } = await exchange(bytes);
  assert.ok(closed);
  assert.deepEqual(statuses(text), [200, 200], `${te}: ${JSON.stringify(text)}`);
  assert.ok(text.includes('"body": "hello world"'), JSON.stringify(text));
  await sleep(50);
  // Two workers: the lines come in the order the answers were done.
  // (The last round's 400s, below, may be logged after `from`.)
  const logged = logLines(from).map((l) => /"([A-Z]+ \S+) HTTP/.exec(l)?.[1]).filter((l) => l !== 'POST /bad');
  assert.deepEqual(logged.sort(), ['GET /next', 'POST /ext']);
  // Not well formed (an extension without a name; a control byte): still 400, and the app never sees it.
  for (const size of ['5; =v', '5;\tn=\x01']) {
    const bad = await exchange(`POST /bad HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${te}\r\n\r\n${size}\r\nhello\r\n0\r\n\r\n`);
    assert.deepEqual(statuses(bad.text), [400], size);
  }
}

test('a faulty chunk after a pipelined request, on both readers: that request is answered, then the faulty one gets 400 (413 for extensions past 16 KiB), each logged once with its request line', async () => {
  const readers: Array<[string, string]> = [
    ['fast path', ''],
    ['node:http (a repeated Connection)', 'Connection: close\r\nConnection: close\r\n'],
  ];
  const faults: Array<[string, number]> = [
    ['5; =v', 400],
    [`5;a=${'b'.repeat(17000)}`, 413],
  ];
  for (const [reader, extra] of readers) {
    for (const [size, status] of faults) {
      const what = `${reader}, ${size.slice(0, 6)}`;
      // Lines of the requests before this one are all in (each is written before its answer ends).
      await sleep(50);
      const from = gh.output().length;
      const { text, closed } = await exchange(
        'GET /first HTTP/1.1\r\nHost: x\r\n\r\n' + `POST /bad HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n${extra}\r\n${size}\r\nhello\r\n0\r\n\r\n`,
      );
      assert.ok(closed, what);
      assert.deepEqual(statuses(text), [200, status], `${what}: ${JSON.stringify(text.slice(0, 400))}`);
      assert.ok(text.includes('"PATH_INFO": "/first"'), what);
      // Each request's line, then a moment for a third (a request logged twice) to show up.
      await waitUntil(() => logLines(from).length >= 2, 5000);
      await sleep(50);
      const lines = logLines(from);
      assert.deepEqual(lines.map((l) => /"([^"]*)" (\d{3})/.exec(l)?.slice(1).join(' ')).sort(), ['GET /first HTTP/1.1 200', `POST /bad HTTP/1.1 ${status}`], `${what}:\n${lines.join('\n')}`);
    }
  }
});

test('methods nginx refuses (lower case, digits) are 400 on both readers', async () => {
  for (const bytes of ['brew / HTTP/1.1\r\nHost: x\r\n\r\n', 'M1 / HTTP/1.1\r\nHost: x\r\n\r\n', 'brew / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n']) {
    const { text, closed } = await exchange(bytes);
    assert.deepEqual(statuses(text), [400], JSON.stringify(bytes));
    assert.ok(closed);
  }
});
