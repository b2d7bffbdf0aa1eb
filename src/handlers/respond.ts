/** The `return` action (nginx's `return CODE TEXT`): a fixed status and body. */
import { STATUS_CODES } from 'node:http';
import type { Handler, RouteRequest } from '../http/handler.js';

export class Respond implements Handler {
  private readonly body: Buffer;

  constructor(private readonly status: number, body: string, private readonly contentType: string) {
    this.body = Buffer.from(body);
  }

  serve(r: RouteRequest): void {
    const bodiless = r.req.method === 'HEAD' || this.status === 204 || this.status === 304 || this.status < 200;
    r.res.writeHead(this.status, STATUS_CODES[this.status] ?? '', {
      'Content-Type': this.contentType,
      ...(this.status === 204 || this.status === 304 ? {} : { 'Content-Length': this.body.length }),
    });
    r.res.end(bodiless ? undefined : this.body);
    r.log(this.status, bodiless ? 0 : this.body.length);
  }
}
