/**
 * The tls suite's rows (tls-suite.ts runs them, tls-report.ts reports them):
 * its three workloads, and one server × app × workload's figures.
 */
import { CONNECTIONS } from './wrk.js';
import type { AppSpec, ServerSpec } from './servers.js';

/** h2load requests per second of --duration: 40,000 for the default 10 s, as `h2load -n 40000`. */
export const H2_REQUESTS_PER_SECOND = 4000;

export type Workload = { id: string; title: string } & ({ kind: 'wrk' } | { kind: 'h2'; clients: number; streams: number });

export const WORKLOADS: readonly Workload[] = [
  { id: 'h1', title: `HTTP/1.1 + TLS (wrk -c${CONNECTIONS})`, kind: 'wrk' },
  { id: 'h2', title: 'h2 (h2load -c10 -m5)', kind: 'h2', clients: 10, streams: 5 },
  { id: 'h2-200', title: 'h2, 200 streams (h2load -c4 -m50)', kind: 'h2', clients: 4, streams: 50 },
];

/** One server × app × workload: the median run's figures, as the tables need them. */
export interface TlsRow {
  server: ServerSpec;
  app: AppSpec;
  workload: Workload;
  /** null: not run (`skipped` says why) or failed. */
  okRps: number | null;
  /** Every answer per second, 2xx or not. */
  answerRps: number | null;
  p99ms: number | null;
  /** Answers that were not 2xx (wrk: not 2xx/3xx) and requests with no answer. */
  bad: number;
  unanswered: number;
  /** Table cells. */
  served: string;
  non2xx: string;
  errors: string;
  /** µs of CPU per answer: the front process(es) and the Python processes. */
  frontUs: number | null;
  pythonUs: number | null;
  /** req/s of 2xx answers of every run, when run more than once. */
  allOk: number[];
  /** Negotiated: "h2, TLSv1.3, TLS_AES_256_GCM_SHA384" (h2load's report); null for wrk (it says nothing). */
  negotiated: string | null;
  notes: string[];
  skipped: string | null;
}

export function emptyTlsRow(server: ServerSpec, app: AppSpec, workload: Workload, skipped: string | null = null): TlsRow {
  return { server, app, workload, okRps: null, answerRps: null, p99ms: null, bad: 0, unanswered: 0, served: '', non2xx: '', errors: '', frontUs: null, pythonUs: null, allOk: [], negotiated: null, notes: [], skipped };
}
