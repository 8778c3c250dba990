// A WebSocket connection as a case sees it: the wire client's Connection (reference-client/wire/connection.ts) with
// an inbox of every server frame, waits that cite the requirement they check, and the per-frame checks that apply
// to every case: each server frame valid against its schema, each `deliver` within DLV-6, nothing but an `error`
// before `welcome` (AUT-16).
import {
  SERVER_FRAME_TYPES,
  describeIssues,
  type AckFrame,
  type DeliverFrame,
  type Limits,
  type MessageItem,
  type ReceiptItem,
  type ServerFrame,
  type ServerFrameMap,
  type WelcomeFrame,
} from '../spec/index.ts';
import { Connection, WireError, type CloseInfo, type Credentials } from '../reference-client/wire/connection.ts';
import { CaseFailure, show } from './case.ts';
import type { Transcript } from './transcript.ts';

export type Item = MessageItem | ReceiptItem;

/** The requirement whose frame shape a schema failure of each server frame type breaks. */
const SCHEMA_REQUIREMENT: Record<string, string> = {
  welcome: 'AUT-13',
  send_ok: 'MSG-12',
  deliver: 'MSG-13',
  queue_empty: 'DLV-26',
  receipt_ok: 'RCP-11',
  error: 'ERR-2',
  pong: 'KAL-1',
};

export interface Clock {
  /** Milliseconds left before the case times out (at least 1). */
  remaining(): number;
  transcript: Transcript;
  /** Called with the answer to `hello` when it is a `welcome` (the case context learns the limits from it); may throw. */
  onWelcome?(welcome: WelcomeFrame): void;
}

export interface Received<T> {
  frame: T;
  /** Case time at which it arrived. */
  at: number;
}

export class Session {
  readonly received: Array<Received<ServerFrame>> = [];
  /** Every item of every `deliver` frame, in arrival order, with the case time of arrival. */
  readonly items: Array<Received<Item>> = [];
  welcome: WelcomeFrame | undefined;
  closeInfo: CloseInfo | undefined;
  private readonly consumed = new Set<ServerFrame>();
  private itemCursor = 0;
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly conn: Connection,
    readonly label: string,
    private readonly clock: Clock,
    openedAt: number,
  ) {
    const transcript = clock.transcript;
    for (const type of SERVER_FRAME_TYPES) {
      conn.on(type as keyof ServerFrameMap, (frame: ServerFrame) => this.onFrame(frame));
    }
    conn.onInvalid((frame, issues) => {
      const type = typeof frame === 'object' && frame !== null ? (frame as { type?: unknown }).type : undefined;
      if (typeof type === 'string' && !SERVER_FRAME_TYPES.includes(type)) return; // unknown types are ignored (TRN-29)
      const schema = typeof type === 'string' ? `spec/schemas/ws/server/${type}.json` : 'a JSON object (TRN-19)';
      const requirementId = typeof type === 'string' ? (SCHEMA_REQUIREMENT[type] ?? 'TRN-19') : 'TRN-19';
      transcript.violation(
        new CaseFailure(requirementId, `a frame valid against ${schema}`, `${show(frame)} (${describeIssues(issues)})`, `${label}: invalid server frame`),
      );
      this.wake();
    });
    void conn.closed.then((info) => {
      this.closeInfo = info;
      // The wire client's own transcript has the frames; merge it into the case transcript in case time.
      for (const entry of conn.transcript ?? []) transcript.add(label, entry.direction, entry.frame, Math.round((openedAt + entry.at) * 10) / 10);
      transcript.add(label, 'note', `closed ${info.code}${info.reason ? ` ${info.reason}` : ''}`);
      this.wake();
    });
  }

  private onFrame(frame: ServerFrame): void {
    const at = this.clock.transcript.now();
    this.received.push({ frame, at });
    if (frame.type === 'welcome') this.welcome ??= frame;
    else if (this.welcome === undefined && frame.type !== 'error') {
      this.clock.transcript.violation(new CaseFailure('AUT-16', 'no frame but an error before welcome', show(frame), this.label));
    }
    if (frame.type === 'deliver') this.checkDeliver(frame, at);
    this.wake();
  }

  private checkDeliver(frame: DeliverFrame, at: number): void {
    const max = this.welcome?.limits.maxDeliverBatch;
    if (max !== undefined && frame.items.length > max) {
      this.clock.transcript.violation(new CaseFailure('DLV-6', `at most maxDeliverBatch (${max}) items`, `${frame.items.length} items`, this.label));
    }
    for (let i = 1; i < frame.items.length; i++) {
      if (frame.items[i]!.seq <= frame.items[i - 1]!.seq) {
        this.clock.transcript.violation(
          new CaseFailure('DLV-6', 'items in ascending seq order', show(frame.items.map((item) => item.seq)), this.label),
        );
        break;
      }
    }
    for (const item of frame.items) this.items.push({ frame: item, at });
  }

  private wake(): void {
    for (const listener of [...this.listeners]) listener();
  }

  get limits(): Limits {
    if (!this.welcome) throw new RangeError(`${this.label} has no session (no welcome yet)`);
    return this.welcome.limits;
  }

  get isOpen(): boolean {
    return this.conn.isOpen;
  }

  /**
   * Waits until `probe` returns a value (checked now and after every frame or close), or fails with `requirementId`
   * when the case's time runs out or `timeoutMs` passes. Violations recorded meanwhile fail the case at once.
   */
  async until<T>(probe: () => T | undefined, requirementId: string, expected: string, timeoutMs?: number): Promise<T> {
    const limit = Math.min(timeoutMs ?? Infinity, this.clock.remaining());
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const check = () => {
        try {
          this.clock.transcript.throwIfViolated();
          const value = probe();
          if (value !== undefined) {
            done();
            resolve(value);
          }
        } catch (error) {
          done();
          reject(error);
        }
      };
      const done = () => {
        this.listeners.delete(check);
        if (timer) clearTimeout(timer);
      };
      timer = setTimeout(() => {
        done();
        const last = this.received.slice(-3).map((r) => r.frame);
        const closed = this.closeInfo ? `; connection closed ${this.closeInfo.code} ${this.closeInfo.reason}` : '';
        reject(new CaseFailure(requirementId, `${expected} within ${Math.round(limit)} ms`, `nothing matching (last frames: ${show(last)}${closed})`, this.label));
      }, limit);
      this.listeners.add(check);
      check();
    });
  }

  /** The first frame of `type` not yet taken that satisfies `where`; waits for it. Marks it taken. */
  next<K extends keyof ServerFrameMap>(
    type: K,
    requirementId: string,
    where: (frame: ServerFrameMap[K]) => boolean = () => true,
    timeoutMs?: number,
  ): Promise<ServerFrameMap[K]> {
    return this.until(
      () => {
        const found = this.received.find((r) => r.frame.type === type && !this.consumed.has(r.frame) && where(r.frame as ServerFrameMap[K]));
        if (!found) return undefined;
        this.consumed.add(found.frame);
        return found.frame as ServerFrameMap[K];
      },
      requirementId,
      `a ${type} frame${where.length > 0 ? ' matching the case' : ''}`,
      timeoutMs,
    );
  }

  /** The next `n` delivered items not yet taken, in arrival order. */
  async takeItems(n: number, requirementId: string, timeoutMs?: number): Promise<Item[]> {
    const items = await this.until(
      () => (this.items.length - this.itemCursor >= n ? this.items.slice(this.itemCursor, this.itemCursor + n).map((r) => r.frame) : undefined),
      requirementId,
      `${n} more delivered item(s)`,
      timeoutMs,
    );
    this.itemCursor += n;
    return items;
  }

  /** The first delivered item (taken or not) satisfying `where`; waits for it. */
  item(requirementId: string, where: (item: Item) => boolean, expected: string, timeoutMs?: number): Promise<Item> {
    return this.until(() => this.items.find((r) => where(r.frame))?.frame, requirementId, expected, timeoutMs);
  }

  /** Waits `ms` (bounded by the case time) and returns the frames that arrived meanwhile. */
  async quiet(ms: number): Promise<ServerFrame[]> {
    const mark = this.received.length;
    await new Promise((resolve) => setTimeout(resolve, Math.min(ms, Math.max(1, this.clock.remaining() - 500))));
    this.clock.transcript.throwIfViolated();
    return this.received.slice(mark).map((r) => r.frame);
  }

  /** Sends a request through the wire client; an answer that is an `error` resolves too. */
  async request(frame: Parameters<Connection['request']>[0], requirementId = 'TRN-30'): Promise<ServerFrame> {
    try {
      const answer = await this.conn.request(frame, this.clock.remaining());
      this.consumed.add(answer);
      this.clock.transcript.throwIfViolated();
      return answer;
    } catch (error) {
      this.clock.transcript.throwIfViolated();
      if (error instanceof WireError && (error.code === 'TIMEOUT' || error.code === 'CLOSED')) {
        throw new CaseFailure(requirementId, `an answer to ${frame.type}${frame.id ? ` ${frame.id}` : ''}`, error.message, this.label);
      }
      throw error;
    }
  }

  /** Sends any JSON value (or a raw string) as a text frame. */
  sendRaw(frame: unknown): void {
    this.conn.sendRaw(frame);
  }

  ack(frame: Omit<AckFrame, 'type'>): void {
    this.conn.sendRaw({ type: 'ack', ...frame });
  }

  /** Waits for the connection to close; fails citing `requirementId` if it stays open. */
  async closed(requirementId: string, timeoutMs?: number): Promise<CloseInfo> {
    await this.until(() => this.closeInfo, requirementId, 'the connection to close', timeoutMs);
    return this.closeInfo!;
  }

  async close(): Promise<void> {
    if (this.closeInfo) return;
    await this.conn.close();
  }

  terminate(): void {
    this.conn.terminate();
  }

  /** Sends `hello` on an unauthenticated connection; resolves with the answer (welcome or error). */
  async hello(credentials: Credentials, extra: { receiveMax?: number; id?: string } = {}): Promise<ServerFrame> {
    const answer = await this.request(
      {
        type: 'hello',
        ...(extra.id === undefined ? {} : { id: extra.id }),
        userId: credentials.userId,
        deviceId: credentials.deviceId,
        secret: credentials.secret,
        ...(extra.receiveMax === undefined ? {} : { receiveMax: extra.receiveMax }),
      },
      'AUT-13',
    );
    if (answer.type === 'welcome') this.clock.onWelcome?.(answer);
    return answer;
  }
}
