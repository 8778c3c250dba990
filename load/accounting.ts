// Accounting for every message of a run. Messages travel in streams: one stream is one (sender device, recipient
// device) pair, and message n of stream s carries the messageId `<run>-<s>-<n>`. The sender records what it sent
// and how the server answered; the recipient records what was delivered to it, in arrival order. Both halves are
// flags per message, so the halves kept by different worker processes merge by OR (and their counters by sum).
//
// At the end each message that the server accepted (send_ok) must have been delivered to the recipient application
// exactly once, in per-stream order, and its delivered receipt must have come back to the sender:
//   lost            accepted (send_ok) but never delivered
//   duplicated      delivered as a second, different item (another seq) after its first delivery: a client that
//                   trusted seqs would have shown it twice (DLV-29 makes clients drop it; the server should not
//                   enqueue it twice, MSG-14)
//   reordered       first delivered after a later message of the same stream had been delivered (DLV-31)
//   receiptsMissing delivered and acknowledged, but no delivered receipt reached the sender (RCP-1)
// and, reported but not failures: redelivered (the same item again, allowed by DLV-21/DLV-24), refused (the send was
// answered with an error, counted under errors too), of which indeterminate (TEMPORARILY_UNAVAILABLE: the send "may or
// may not have been accepted", MSG-18, so its delivery is not unexpected and its absence not a loss), unanswered (no
// answer before the connection closed or the request timed out; delivered or not, the tool cannot know whether the
// server accepted it).

export const FLAG_SENT = 1;
export const FLAG_ACKED = 2;
export const FLAG_REFUSED = 4;
export const FLAG_DELIVERED = 8;
export const FLAG_RECEIPT = 16;
/** With FLAG_REFUSED: the error was TEMPORARILY_UNAVAILABLE, after which the message may have been accepted [MSG-18]. */
export const FLAG_INDETERMINATE = 32;

/** The messageId of message `n` of stream `stream` in run `run` (matches ^[A-Za-z0-9_-]{8,64}$). */
export function messageIdOf(run: string, stream: number, n: number): string {
  return `${run}-${stream}-${n}`;
}

/** The stream and number of a messageId made by messageIdOf for `run`, or undefined for a foreign one. */
export function parseMessageId(run: string, messageId: string): { stream: number; n: number } | undefined {
  if (!messageId.startsWith(run) || messageId.charCodeAt(run.length) !== 45 /* - */) return undefined;
  const rest = messageId.slice(run.length + 1);
  const dash = rest.indexOf('-');
  if (dash <= 0) return undefined;
  const stream = Number(rest.slice(0, dash));
  const n = Number(rest.slice(dash + 1));
  if (!Number.isSafeInteger(stream) || !Number.isSafeInteger(n) || stream < 0 || n < 0) return undefined;
  return { stream, n };
}

class StreamRecord {
  flags = new Uint8Array(16);
  /** The seq of each message's first delivery (recipient side), to tell a redelivery from a second item. */
  firstSeq = new Float64Array(16);
  /** Highest n whose first delivery has been seen. */
  highest = -1;
  duplicated = 0;
  reordered = 0;
  redelivered = 0;
  /** Highest n + 1 ever touched. */
  length = 0;

  ensure(n: number): void {
    if (n < this.flags.length) {
      if (n >= this.length) this.length = n + 1;
      return;
    }
    let size = this.flags.length;
    while (size <= n) size *= 2;
    const flags = new Uint8Array(size);
    flags.set(this.flags);
    const seqs = new Float64Array(size);
    seqs.set(this.firstSeq);
    this.flags = flags;
    this.firstSeq = seqs;
    this.length = n + 1;
  }
}

/** The serialised form of one stream, for IPC between workers and the coordinator. */
export interface StreamState {
  stream: number;
  /** base64 of one flag byte per message n = 0 … length−1. */
  flags: string;
  duplicated: number;
  reordered: number;
  redelivered: number;
}

export interface AccountingState {
  streams: StreamState[];
  foreign: number;
}

export interface AccountingSummary {
  /** Messages handed to the socket. */
  sent: number;
  /** Answered send_ok. */
  accepted: number;
  refused: number;
  /** Of the refused, those answered TEMPORARILY_UNAVAILABLE: accepted or not, the server could not say [MSG-18]. */
  indeterminate: number;
  unanswered: number;
  /** Distinct messages delivered at least once. */
  delivered: number;
  receipts: number;
  lost: number;
  duplicated: number;
  reordered: number;
  receiptsMissing: number;
  redelivered: number;
  /**
   * Delivered messages whose send was refused with an error other than TEMPORARILY_UNAVAILABLE, or whose id belongs
   * to no stream of this run.
   */
  unexpected: number;
  /** The first few lost messages, as stream/n, for the report. */
  lostExamples: string[];
}

export class Accounting {
  private readonly streams = new Map<number, StreamRecord>();
  private foreign = 0;

  private record(stream: number, n: number): StreamRecord {
    if (!Number.isSafeInteger(stream) || stream < 0 || !Number.isSafeInteger(n) || n < 0) throw new RangeError(`bad message coordinates ${stream}/${n}`);
    let r = this.streams.get(stream);
    if (!r) this.streams.set(stream, (r = new StreamRecord()));
    r.ensure(n);
    return r;
  }

  private mark(stream: number, n: number, flag: number): void {
    const r = this.record(stream, n);
    r.flags[n]! |= flag;
  }

  /** Sender: the send of message n went out on the socket. */
  sent(stream: number, n: number): void {
    this.mark(stream, n, FLAG_SENT);
  }

  /** Sender: the server answered send_ok. */
  accepted(stream: number, n: number): void {
    this.mark(stream, n, FLAG_ACKED);
  }

  /** Sender: the server answered with an error frame; `indeterminate` for TEMPORARILY_UNAVAILABLE [MSG-18]. */
  refused(stream: number, n: number, indeterminate = false): void {
    this.mark(stream, n, indeterminate ? FLAG_REFUSED | FLAG_INDETERMINATE : FLAG_REFUSED);
  }

  /** Sender: a delivered receipt listing the message arrived. */
  receipt(stream: number, n: number): void {
    this.mark(stream, n, FLAG_RECEIPT);
  }

  /** Recipient: the item `seq` carrying message n of the stream was delivered; call in arrival order. Returns
   * whether this was the message's first delivery. */
  delivered(stream: number, n: number, seq: number): boolean {
    const r = this.record(stream, n);
    const flags = r.flags[n]!;
    if (flags & FLAG_DELIVERED) {
      if (r.firstSeq[n] === seq) r.redelivered++;
      else r.duplicated++;
      return false;
    }
    r.flags[n] = flags | FLAG_DELIVERED;
    r.firstSeq[n] = seq;
    if (n < r.highest) r.reordered++;
    else r.highest = n;
    return true;
  }

  /** Recipient: a message whose id this run did not make. */
  foreignMessage(): void {
    this.foreign++;
  }

  /** Whether every accepted message of the streams this side sent has its receipt (the sender's view of "done"). */
  senderComplete(): boolean {
    for (const r of this.streams.values()) {
      for (let n = 0; n < r.length; n++) {
        const f = r.flags[n]!;
        if (f & FLAG_SENT && !(f & (FLAG_ACKED | FLAG_REFUSED))) return false;
        if (f & FLAG_ACKED && !(f & FLAG_RECEIPT)) return false;
      }
    }
    return true;
  }

  /** Whether every accepted message is delivered (valid only where both halves are recorded). */
  deliveredAll(): boolean {
    for (const r of this.streams.values()) {
      for (let n = 0; n < r.length; n++) {
        const f = r.flags[n]!;
        if (f & FLAG_ACKED && !(f & FLAG_DELIVERED)) return false;
      }
    }
    return true;
  }

  serialize(): AccountingState {
    const streams: StreamState[] = [];
    for (const [stream, r] of this.streams) {
      streams.push({ stream, flags: Buffer.from(r.flags.subarray(0, r.length)).toString('base64'), duplicated: r.duplicated, reordered: r.reordered, redelivered: r.redelivered });
    }
    return { streams, foreign: this.foreign };
  }

  /** Adds the flags and counters of `state` (another process's half) into this accounting. */
  merge(state: AccountingState): void {
    this.foreign += state.foreign;
    for (const s of state.streams) {
      const flags = Buffer.from(s.flags, 'base64');
      if (flags.length === 0 && s.duplicated + s.reordered + s.redelivered === 0) continue;
      const r = this.record(s.stream, Math.max(0, flags.length - 1));
      for (let n = 0; n < flags.length; n++) r.flags[n]! |= flags[n]!;
      r.duplicated += s.duplicated;
      r.reordered += s.reordered;
      r.redelivered += s.redelivered;
    }
  }

  summary(): AccountingSummary {
    const out: AccountingSummary = { sent: 0, accepted: 0, refused: 0, indeterminate: 0, unanswered: 0, delivered: 0, receipts: 0, lost: 0, duplicated: 0, reordered: 0, receiptsMissing: 0, redelivered: 0, unexpected: this.foreign, lostExamples: [] };
    for (const [stream, r] of [...this.streams].sort((a, b) => a[0] - b[0])) {
      out.duplicated += r.duplicated;
      out.reordered += r.reordered;
      out.redelivered += r.redelivered;
      for (let n = 0; n < r.length; n++) {
        const f = r.flags[n]!;
        if (f & FLAG_SENT) out.sent++;
        if (f & FLAG_ACKED) out.accepted++;
        if (f & FLAG_REFUSED) out.refused++;
        if (f & FLAG_INDETERMINATE) out.indeterminate++;
        if (f & FLAG_DELIVERED) out.delivered++;
        if (f & FLAG_RECEIPT) out.receipts++;
        const answered = (f & (FLAG_ACKED | FLAG_REFUSED)) !== 0;
        if (f & FLAG_SENT && !answered) out.unanswered++;
        if (f & FLAG_ACKED && !(f & FLAG_DELIVERED)) {
          out.lost++;
          if (out.lostExamples.length < 10) out.lostExamples.push(`${stream}/${n}`);
        }
        const refusedForSure = (f & (FLAG_REFUSED | FLAG_INDETERMINATE)) === FLAG_REFUSED;
        if (f & FLAG_DELIVERED && (refusedForSure || !(f & FLAG_SENT))) out.unexpected++;
        if (f & FLAG_ACKED && f & FLAG_DELIVERED && !(f & FLAG_RECEIPT)) out.receiptsMissing++;
      }
    }
    return out;
  }
}
