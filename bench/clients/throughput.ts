// Scenario 1, client side: sender/recipient pairs in closed loop. Each sender keeps up to `inFlight` messages
// outstanding; a message stops being outstanding when its send_ok came back and its delivery reached the recipient.
// The recipient acknowledges every deliver frame cumulatively (`ack` {upTo}); the sender acknowledges the delivered
// receipts it gets in turn, as a real client must [DLV-18]. Against the baseline echo server the same loop runs on
// one connection per pair: the frame goes out, the echo comes back, the slot is free.
import { Connection } from '../../reference-client/wire/connection.ts';
import type { DeliverFrame, ErrorFrame, SendFrame, SendOkFrame } from '../../spec/index.ts';
import { Histogram } from '../lib/histogram.ts';
import type { Pair, ThroughputResult, ThroughputRunJob, ThroughputSetupJob } from '../lib/jobs.ts';
import { readCpuSeconds, readMachineBusySeconds } from '../lib/proc.ts';
import { Rng } from '../lib/rng.ts';

/** How long the run waits, after the window closed, for outstanding messages to finish. */
const DRAIN_WAIT_MS = 10_000;
/** Connections opened at once during set-up. */
const SETUP_CONCURRENCY = 16;
/** Server frames are not schema-checked on the hot path: ajv on every frame would bill the server for client CPU. */
const FAST = { validate: false, handshakeTimeoutMs: 30_000, helloTimeoutMs: 30_000 } as const;

interface Outstanding {
  t0: number;
  ok: boolean;
  delivered: boolean;
}

interface Lane {
  pair: Pair;
  sender: Connection;
  /** The Tickwire recipient; undefined against the baseline (the echo comes back on `sender`). */
  recipient: Connection | undefined;
  tag: string;
  counter: number;
  outstanding: Map<string, Outstanding>;
}

async function inBatches<T, R>(items: T[], concurrency: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
  return out;
}

/** `Connection.on` typed for the echo server, whose answers are the client's own `send` frames coming back. */
function onEcho(connection: Connection, handler: (frame: SendFrame) => void): void {
  const on = connection.on.bind(connection) as unknown as (type: string, h: (frame: SendFrame) => void) => () => void;
  on('send', handler);
}

export class ThroughputClient {
  private lanes: Lane[] = [];
  private job: ThroughputSetupJob | undefined;
  private stopping = false;
  private windowStart = Infinity;
  private windowOpen = false;
  private delivered = 0;
  private sendOk = 0;
  private receipts = 0;
  private redelivered = 0;
  private readonly errors: Record<string, number> = {};
  private readonly endToEnd = new Histogram();
  private readonly sendToOk = new Histogram();
  private onProgress: (() => void) | undefined;

  async setup(job: ThroughputSetupJob): Promise<{ connections: number }> {
    if (job.inFlight < 1) throw new RangeError('inFlight must be at least 1');
    this.job = job;
    // One client object serves several runs (Tickwire, then the baseline): every run starts from a clean state.
    this.stopping = false;
    this.windowStart = Infinity;
    this.windowOpen = false;
    this.delivered = this.sendOk = this.receipts = this.redelivered = 0;
    for (const code of Object.keys(this.errors)) delete this.errors[code];
    this.endToEnd.reset();
    this.sendToOk.reset();
    const rng = new Rng(job.seed);
    this.lanes = await inBatches(job.pairs, SETUP_CONCURRENCY, async (pair) => {
      const tag = rng.token(8);
      if (job.target === 'baseline') {
        const sender = await Connection.open(job.url, FAST);
        return { pair, sender, recipient: undefined, tag, counter: 0, outstanding: new Map() };
      }
      const recipient = await Connection.connect(job.url, pair.recipient, FAST);
      const sender = await Connection.connect(job.url, pair.sender, FAST);
      return { pair, sender, recipient, tag, counter: 0, outstanding: new Map() };
    });
    for (const lane of this.lanes) this.wire(lane);
    return { connections: this.lanes.length * (job.target === 'baseline' ? 1 : 2) };
  }

  async run(job: ThroughputRunJob): Promise<ThroughputResult> {
    if (!this.job) throw new Error('throughput-run before throughput-setup');
    for (const lane of this.lanes) this.pump(lane);
    await new Promise((r) => setTimeout(r, job.warmupMs));
    // The measurement window: counters and histograms start empty; only messages sent from now on are timed.
    this.endToEnd.reset();
    this.sendToOk.reset();
    this.delivered = this.sendOk = this.receipts = 0;
    this.windowStart = performance.now();
    this.windowOpen = true;
    const serverCpu0 = readCpuSeconds(job.serverPid);
    const clientCpu0 = process.cpuUsage();
    const machineCpu0 = readMachineBusySeconds();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, job.durationMs);
      this.onProgress = () => {
        if (this.delivered >= job.maxMessages) {
          clearTimeout(timer);
          resolve();
        }
      };
    });
    this.windowOpen = false;
    this.onProgress = undefined;
    const windowMs = performance.now() - this.windowStart;
    const clientCpu = process.cpuUsage(clientCpu0);
    const cpu = {
      server: (readCpuSeconds(job.serverPid) - serverCpu0) / (windowMs / 1000),
      client: (clientCpu.user + clientCpu.system) / 1000 / windowMs,
      machine: (readMachineBusySeconds() - machineCpu0) / (windowMs / 1000),
    };
    this.stopping = true;
    const deadline = performance.now() + DRAIN_WAIT_MS;
    while (this.lanes.some((l) => l.outstanding.size > 0) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const unfinished = this.lanes.reduce((n, l) => n + l.outstanding.size, 0);
    return {
      windowMs,
      delivered: this.delivered,
      sendOk: this.sendOk,
      receipts: this.receipts,
      endToEnd: this.endToEnd.snapshot(),
      sendToOk: this.sendToOk.snapshot(),
      errors: this.errors,
      redelivered: this.redelivered,
      unfinished,
      cpu,
    };
  }

  async close(): Promise<number> {
    const all = this.lanes.flatMap((l) => (l.recipient ? [l.sender, l.recipient] : [l.sender]));
    await Promise.all(all.map((c) => c.close().catch(() => undefined)));
    this.lanes = [];
    return all.length;
  }

  private wire(lane: Lane): void {
    const baseline = lane.recipient === undefined;
    if (baseline) {
      onEcho(lane.sender, (frame) => {
        const o = lane.outstanding.get(frame.messageId);
        if (!o) return;
        o.ok = o.delivered = true;
        const now = performance.now();
        if (this.windowOpen) {
          this.delivered++;
          this.sendOk++;
        }
        if (o.t0 >= this.windowStart) {
          this.endToEnd.record(now - o.t0);
          this.sendToOk.record(now - o.t0);
        }
        this.finish(lane, frame.messageId, o);
      });
      return;
    }
    lane.sender.on('send_ok', (frame: SendOkFrame) => {
      const o = lane.outstanding.get(frame.messageId);
      if (!o || o.ok) return;
      o.ok = true;
      if (this.windowOpen) this.sendOk++;
      if (o.t0 >= this.windowStart) this.sendToOk.record(performance.now() - o.t0);
      this.finish(lane, frame.messageId, o);
    });
    lane.sender.on('error', (frame: ErrorFrame) => this.onError(lane, frame));
    lane.recipient!.on('error', (frame: ErrorFrame) => this.onError(lane, frame));
    // The sender's own queue fills with delivered receipts; acknowledge them like any client.
    lane.sender.on('deliver', (frame: DeliverFrame) => {
      let last = 0;
      for (const item of frame.items) {
        if (item.kind === 'receipt' && this.windowOpen) this.receipts += item.messageIds.length;
        last = item.seq;
      }
      lane.sender.sendRaw({ type: 'ack', upTo: last });
    });
    lane.recipient!.on('deliver', (frame: DeliverFrame) => {
      const now = performance.now();
      let last = 0;
      for (const item of frame.items) {
        last = item.seq;
        if (item.redelivered) this.redelivered++;
        if (item.kind !== 'message') continue;
        const o = lane.outstanding.get(item.messageId);
        if (!o || o.delivered) continue;
        o.delivered = true;
        if (this.windowOpen) this.delivered++;
        if (o.t0 >= this.windowStart) this.endToEnd.record(now - o.t0);
        this.finish(lane, item.messageId, o);
      }
      lane.recipient!.sendRaw({ type: 'ack', upTo: last });
      this.onProgress?.();
    });
  }

  private onError(lane: Lane, frame: ErrorFrame): void {
    this.errors[frame.code] = (this.errors[frame.code] ?? 0) + 1;
    // A refused send frees its slot; the message is not retried (the error count shows it).
    if (frame.id !== undefined && lane.outstanding.delete(frame.id)) this.pump(lane);
  }

  private finish(lane: Lane, messageId: string, o: Outstanding): void {
    if (!(o.ok && o.delivered)) return;
    lane.outstanding.delete(messageId);
    this.pump(lane);
  }

  private pump(lane: Lane): void {
    const job = this.job!;
    while (!this.stopping && lane.outstanding.size < job.inFlight) {
      const messageId = `${lane.tag}${(lane.counter++).toString(36)}`;
      const frame: SendFrame = {
        type: 'send',
        id: messageId,
        messageId,
        to: lane.pair.recipient.userId,
        envelopes: [{ deviceId: lane.pair.recipient.deviceId, type: 'ratchet', body: job.bodyBase64 }],
      };
      lane.outstanding.set(messageId, { t0: performance.now(), ok: false, delivered: false });
      lane.sender.sendRaw(frame);
    }
  }
}
