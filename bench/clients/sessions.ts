// Scenarios 2 and 5, client side: opens many connections, about `concurrency` handshakes at a time, and keeps them
// open (idle) until `close-all`. Against Tickwire a session is connect + hello → welcome; against the baseline it is
// connect → open. Every connection is timed.
import { Connection } from '../../reference-client/wire/connection.ts';
import { Histogram } from '../lib/histogram.ts';
import type { OpenSessionsJob, OpenSessionsResult } from '../lib/jobs.ts';

const TIMEOUTS = { handshakeTimeoutMs: 60_000, helloTimeoutMs: 60_000 } as const;

export class SessionsClient {
  private connections: Connection[] = [];

  async open(job: OpenSessionsJob): Promise<OpenSessionsResult> {
    if (job.target === 'tickwire' && job.accounts.length < job.count) throw new RangeError(`${job.count} sessions need as many accounts (got ${job.accounts.length})`);
    const setup = new Histogram();
    let next = 0;
    let failed = 0;
    let firstFailure: string | undefined;
    const t0 = performance.now();
    const lane = async () => {
      for (let i = next++; i < job.count; i = next++) {
        const started = performance.now();
        try {
          const connection =
            job.target === 'tickwire'
              ? await Connection.connect(job.url, job.accounts[i]!, { validate: false, ...TIMEOUTS })
              : await Connection.open(job.url, { validate: false, ...TIMEOUTS });
          setup.record(performance.now() - started);
          this.connections.push(connection);
        } catch (error) {
          failed++;
          firstFailure ??= (error as Error).message;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(job.concurrency, job.count) }, lane));
    const elapsedMs = performance.now() - t0;
    return { opened: setup.count, failed, ...(firstFailure ? { firstFailure } : {}), elapsedMs, setup: setup.snapshot() };
  }

  /** Drops every connection (TCP close without a closing handshake: thousands of handshakes would take seconds). */
  closeAll(): number {
    const n = this.connections.length;
    for (const connection of this.connections) connection.terminate();
    this.connections = [];
    return n;
  }
}
