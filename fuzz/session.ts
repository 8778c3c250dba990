// A lane's long-lived authenticated session, through the wire client's Connection: it carries the `frame` and
// `sequence` inputs pipelined (up to `maxInFlight` inputs at once, each frame's answer matched by the AnswerBook),
// acknowledges every item delivered to it so that its queue and window never fill, and reconnects when the server
// ends it (a fatal error is a correct answer, not a failure: the book has already judged it).
import type { Socket } from 'node:net';
import { SERVER_FRAME_TYPES, type ServerFrame, type ServerFrameMap } from '../spec/index.ts';
import { Connection } from '../reference-client/wire/connection.ts';
import { AnswerBook, type InputRun, type Watch } from './oracles/answers.ts';
import type { Finding } from './oracles/finding.ts';
import type { Planned } from './plan.ts';
import type { Identity, World } from './world.ts';

export interface LaneSessionOptions {
  world: World;
  identity: Identity;
  watch: Watch;
  settleMs: number;
  timeoutMs: number;
  /** Findings that arise between inputs (a session dropped while idle). */
  orphan: (f: Finding) => void;
}

export class LaneSession {
  private conn: Connection | undefined;
  private book: AnswerBook | undefined;
  private opening: Promise<void> | undefined;
  private pending = 0;
  private waiters: Array<() => void> = [];
  private corked = false;
  /** Sessions opened, for the summary (each reopen follows a close by the server). */
  opened = 0;

  constructor(private readonly options: LaneSessionOptions) {}

  get inFlight(): number {
    return this.pending;
  }

  /** Resolves once fewer than `limit` inputs are in flight. */
  async room(limit: number): Promise<void> {
    while (this.pending >= limit) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Resolves once nothing is in flight. */
  async idle(): Promise<void> {
    await this.room(1);
  }

  private async ensure(): Promise<{ conn: Connection; book: AnswerBook }> {
    while (!this.conn || !this.book || !this.conn.isOpen || this.book.isClosed) {
      this.opening ??= this.open().finally(() => (this.opening = undefined));
      await this.opening;
    }
    return { conn: this.conn, book: this.book };
  }

  private async open(): Promise<void> {
    const { world, identity, watch } = this.options;
    const conn = await Connection.connect(world.url, identity, { helloTimeoutMs: this.options.timeoutMs });
    const book = new AnswerBook({ label: `session ${identity.userId}.${identity.deviceId}`, watch, pushFatal: new Set(), settleMs: this.options.settleMs, timeoutMs: this.options.timeoutMs });
    book.orphan = this.options.orphan;
    const maxAck = conn.welcome?.limits.maxAckBatch ?? 1;
    // [DLV-11] Acknowledge what arrives, so that peers' accepted sends never fill this device's window or queue.
    book.onDeliver = (frame) => {
      const seqs = frame.items.map((item) => item.seq);
      for (let i = 0; i < seqs.length; i += maxAck) conn.sendRaw({ type: 'ack', seqs: seqs.slice(i, i + maxAck) });
    };
    for (const type of SERVER_FRAME_TYPES) conn.on(type as keyof ServerFrameMap, (frame: ServerFrame) => book.receive(frame));
    conn.onInvalid((frame, issues) => book.invalid(frame, issues));
    void conn.closed.then((info) => book.close(info.code, info.reason, info.code !== 1006));
    this.conn = conn;
    this.book = book;
    this.opened++;
  }

  /**
   * Sends an input's planned messages and registers their expectations; resolves once they are sent, with `done`, a
   * promise that settles when every expectation has (an object, so that the two promises stay apart).
   */
  async send(run: InputRun, planned: Planned[]): Promise<{ done: Promise<void> }> {
    let session: { conn: Connection; book: AnswerBook };
    try {
      session = await this.ensure();
    } catch (error) {
      run.findings.push({ oracle: 'answers', requirement: 'AUT-13', summary: `the lane's session could not be reopened: ${(error as Error).message}` });
      return { done: Promise.resolve() };
    }
    const { conn, book } = session;
    this.corkUntilNextTurn(conn);
    this.pending++;
    const settles: Array<Promise<void>> = [];
    for (const p of planned) {
      if (p.wire.kind === 'message') {
        conn.sendUnchecked(p.wire.payload, { text: !p.wire.binary });
        if (p.exp) settles.push(book.expect(run, p.exp));
      } else if (p.wire.kind === 'wait') {
        await new Promise((resolve) => setTimeout(resolve, p.wire.kind === 'wait' ? p.wire.ms : 0));
      }
    }
    const done = Promise.all(settles).then(() => {
      this.pending--;
      const waiters = this.waiters;
      this.waiters = [];
      for (const wake of waiters) wake();
    });
    return { done };
  }

  /**
   * The frames of all inputs sent in one turn of the event loop leave in one write: the socket is corked on the first
   * and uncorked on the next turn. (`ws` keeps its socket in `_socket`, as the reference server's FrameWriter notes;
   * without it this does nothing.)
   */
  private corkUntilNextTurn(conn: Connection): void {
    if (this.corked) return;
    const socket = (conn.socket as unknown as { _socket?: Socket })._socket;
    if (!socket || socket.destroyed) return;
    socket.cork();
    this.corked = true;
    setImmediate(() => {
      this.corked = false;
      socket.uncork();
    });
  }

  async close(): Promise<void> {
    this.book?.closingByClient();
    await this.conn?.close().catch(() => undefined);
    this.book?.dispose();
  }
}
