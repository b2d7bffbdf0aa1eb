/** Promises over the npm `ws` client, for the WebSocket tests. */
import { WebSocket } from 'ws';

export function opened(ws: WebSocket, ms = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the WebSocket did not open in time')), ms);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve();
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

export function nextMessage(ws: WebSocket, ms = 5000): Promise<{ data: Buffer; binary: boolean }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message in time')), ms);
    ws.once('message', (data: Buffer, binary: boolean) => {
      clearTimeout(timer);
      resolve({ data, binary });
    });
  });
}

export function closed(ws: WebSocket, ms = 5000): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.reject(new Error('already closed'));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the WebSocket did not close in time')), ms);
    ws.on('error', () => {});
    ws.once('close', (code: number, reason: Buffer) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
  });
}

/** A handshake the server answers with something other than 101: its status, headers and body. */
export function denied(url: string, ms = 5000): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => reject(new Error('no answer in time')), ms);
    ws.on('open', () => reject(new Error('the handshake was accepted')));
    ws.on('error', () => {});
    ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() });
        ws.terminate();
      });
    });
  });
}
