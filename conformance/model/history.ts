// The observed history of one model run: every client-side event of every device, in the order the client saw
// them. The checker (checker.ts) judges a history on its own, so a history can be written by hand for its tests.
// Order is the position in `events`: the client is one event loop, so a later position means observed later, and
// on one connection TCP keeps the server's order. `at` (case time, ms) is only for people reading a report.
import type { Item } from '../session.ts';

/** A device of the scenario: its short label (`a1`: user `a`, its first device) and its address. */
export interface DeviceInfo {
  label: string;
  /** The user's label: `a`, `b`, `c`. */
  user: string;
  userId: string;
  deviceId: number;
}

/** One envelope of a send as the sender wrote it. */
export interface SentEnvelope {
  /** Label of the recipient device. */
  device: string;
  type: 'prekey' | 'ratchet';
  body: string;
}

interface Base {
  /** Case time in milliseconds, for reports. */
  at: number;
}

interface OnSession extends Base {
  /** Label of the device. */
  device: string;
  /** The connection, unique within the history: `a1#3`. */
  session: string;
}

/** The client opened a connection and sent `hello` on it. */
export interface ConnectEvent extends OnSession {
  kind: 'connect';
}

/** The connection closed (either side closed it, or it dropped). */
export interface ClosedEvent extends OnSession {
  kind: 'closed';
  code: number;
}

/** A `send` left the client. `resend`: a repeat of an earlier send with the same messageId and envelopes. */
export interface SendEvent extends OnSession {
  kind: 'send';
  id: string;
  messageId: string;
  /** Label of the `to` user. */
  to: string;
  envelopes: SentEnvelope[];
  resend: boolean;
}

/** The `send_ok` answering the send with request id `id` on `session`. */
export interface SendOkEvent extends OnSession {
  kind: 'send_ok';
  id: string;
  messageId: string;
  serverTime: number;
  duplicate: boolean;
}

/** A send ended without `send_ok` (an allowed error such as TEMPORARILY_UNAVAILABLE, or the connection closed). */
export interface SendFailedEvent extends OnSession {
  kind: 'send_failed';
  id: string;
  messageId: string;
  reason: string;
}

/** One item of a `deliver` frame (a frame with three items is three events, in frame order). */
export interface DeliverEvent extends OnSession {
  kind: 'deliver';
  item: Item;
}

/** The session's queue_empty: its backlog has been delivered (DLV-27). */
export interface QueueEmptyEvent extends OnSession {
  kind: 'queue_empty';
  lastSeq: number;
}

/** An `ack` frame the client sent, followed at once by a `ping` with id `ping` (its `pong` confirms the ack, TRN-34). */
export interface AckEvent extends OnSession {
  kind: 'ack';
  upTo?: number;
  seqs?: number[];
  ping: string;
}

export interface PongEvent extends OnSession {
  kind: 'pong';
  id: string;
}

/**
 * The server under test is about to be restarted (`crash`: killed without warning). Frames that arrive after this
 * event may still come from before the crash, until the matching `restarted`.
 */
export interface RestartEvent extends Base {
  kind: 'restart';
  how: 'crash' | 'graceful';
}

/** The restarted server serves again: everything observed after this comes from after the restart. */
export interface RestartedEvent extends Base {
  kind: 'restarted';
}

export type HistoryEvent = ConnectEvent | ClosedEvent | SendEvent | SendOkEvent | SendFailedEvent | DeliverEvent | QueueEmptyEvent | AckEvent | PongEvent | RestartEvent | RestartedEvent;

/** Every event, without `at`, as a recorder takes it. */
export type NewEvent = HistoryEvent extends infer E ? (E extends HistoryEvent ? Omit<E, 'at'> : never) : never;

export interface History {
  devices: DeviceInfo[];
  events: HistoryEvent[];
}

/** Collects a history as it happens; waiters are woken after every event. */
export class Recorder implements History {
  readonly devices: DeviceInfo[] = [];
  readonly events: HistoryEvent[] = [];
  private readonly listeners = new Set<() => void>();

  constructor(private readonly clock: () => number) {}

  record(event: NewEvent): void {
    this.events.push({ ...event, at: this.clock() } as HistoryEvent);
    for (const listener of [...this.listeners]) listener();
  }

  /** Resolves true once `done()` holds (checked now and after every event), or false after `timeoutMs`. */
  until(done: () => boolean, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = () => {
        if (!done()) return;
        finish();
        resolve(true);
      };
      const timer = setTimeout(() => {
        finish();
        resolve(false);
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }
}

/** A short description of an item for reports: `seq 7 msg-a1-002 from a1` or `seq 9 delivered receipt from b1 [msg-a1-002]`. */
export function describeItem(item: Item, labelOf: (address: { userId: string; deviceId: number }) => string): string {
  const flag = item.redelivered ? ' (redelivered)' : '';
  if (item.kind === 'message') return `seq ${item.seq} ${item.messageId} from ${labelOf(item.from)}${flag}`;
  return `seq ${item.seq} ${item.status} receipt from ${labelOf(item.from)} [${item.messageIds.join(', ')}]${flag}`;
}
