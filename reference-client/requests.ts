// Request accounting on one connection: never more than `maxPendingRequests` unanswered requests [TRN-36]. Sends
// leave a few slots free (RESERVED_PENDING_REQUESTS) so that pings and read receipts are never starved by a large
// outbox. One instance per connection; a closed connection fails its waiting and pending requests with CLOSED.
import type { ClientFrame, ServerFrame } from '../spec/index.ts';
import { REQUEST_TIMEOUT_MS, RESERVED_PENDING_REQUESTS } from './constants.ts';
import type { Connection } from './wire/connection.ts';

type RequestFrame = Extract<ClientFrame, { id: string }>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export class PendingRequests {
  private inFlight = 0;
  private waiters: Array<() => void> = [];

  constructor(
    readonly connection: Connection,
    private readonly maxPending: number,
  ) {}

  /** Sends a request once a slot is free; `bulk` requests (sends) leave RESERVED_PENDING_REQUESTS slots free. */
  async request(frame: DistributiveOmit<RequestFrame, 'id'>, bulk = false): Promise<ServerFrame> {
    const cap = bulk ? Math.max(1, this.maxPending - RESERVED_PENDING_REQUESTS) : this.maxPending;
    while (this.inFlight >= cap && this.connection.isOpen) await new Promise<void>((resolve) => this.waiters.push(resolve));
    this.inFlight++;
    try {
      return await this.connection.request(frame, REQUEST_TIMEOUT_MS);
    } finally {
      this.inFlight--;
      const waiters = this.waiters;
      this.waiters = [];
      for (const wake of waiters) wake();
    }
  }

  /** Wakes every waiter (the connection closed: their requests fail at once with CLOSED). */
  release(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
