// The delivery checker, in the spirit of Maelstrom's: a pure function from an observed history (history.ts) to the
// anomalies it shows, each by name with the requirement IDs it violates. It judges only what a client can see, and
// it gives the server the benefit of every doubt the spec allows: a redelivery of an unacknowledged item is fine, an
// acknowledgement counts as applied only once a later `pong` on the same connection proves it (TRN-34), and after a
// crash acknowledged items may come back (DLV-15, DLV-16) and delivered receipts may be duplicated (RCP-5).
import type { Item } from '../session.ts';
import type { AckEvent, DeliverEvent, DeviceInfo, History, SendEvent, SendOkEvent } from './history.ts';
import { describeItem } from './history.ts';

export type AnomalyName = 'lost' | 'phantom' | 'duplicate' | 'reordered' | 'receipt-lost' | 'redelivery-flag' | 'seq-reused';

export interface Anomaly {
  name: AnomalyName;
  /** The requirements it violates, the most direct first (after a crash, the durability promise: DLV-39, RCP-5). */
  requirements: string[];
  /** The device where it shows. */
  device: string;
  messageIds: string[];
  /** One line for people. */
  detail: string;
}

/** What each anomaly means and every requirement it can cite (the model cases cite all of them). */
export const ANOMALIES: Readonly<Record<AnomalyName, { meaning: string; requirements: readonly string[] }>> = {
  lost: {
    meaning: 'a send answered with send_ok never reached a recipient device, or reached it and was never delivered again although never acknowledged',
    requirements: ['MSG-10', 'DLV-24', 'DLV-39'],
  },
  phantom: {
    meaning: 'an item nobody sent: an unknown message, one for another device, one with other content, sender or serverTime, or a receipt for an acknowledgement that never happened',
    requirements: ['MSG-13', 'DLV-5', 'MSG-10', 'RCP-1', 'RCP-11'],
  },
  duplicate: {
    meaning: 'an item delivered again after its acknowledgement was applied (no crash in between), one message enqueued twice, a resend not recognised, or a second delivered receipt without a crash',
    requirements: ['DLV-15', 'MSG-10', 'MSG-14', 'RCP-1', 'DLV-14'],
  },
  reordered: {
    meaning: "a sender device's later message got a lower seq than its earlier one in a recipient's queue, or a session delivered an item for the first time after a higher seq",
    requirements: ['DLV-31', 'DLV-7'],
  },
  'receipt-lost': {
    meaning: 'an acknowledgement the server applied whose delivered receipt never reached the sender device',
    requirements: ['RCP-1', 'RCP-5', 'DLV-39'],
  },
  'redelivery-flag': {
    meaning: 'a second delivery of an item without `redelivered: true`, with no restart since the first',
    requirements: ['DLV-10'],
  },
  'seq-reused': {
    meaning: "one seq of a device's queue named two different items",
    requirements: ['DLV-3'],
  },
};

export const ANOMALY_NAMES = Object.keys(ANOMALIES) as AnomalyName[];

interface Delivery {
  index: number;
  event: DeliverEvent;
}

interface Attempt {
  index: number;
  event: SendEvent;
  ok?: { index: number; event: SendOkEvent };
}

/** One message: a sender device and a messageId, with every attempt to send it. */
interface Message {
  key: string;
  from: string;
  messageId: string;
  attempts: Attempt[];
  /** The attempt that counts: the first answered `duplicate: false`, else the first. */
  accepted: Attempt;
  /** Position of the first `send_ok` of any attempt: the message was accepted before it. */
  okIndex?: number;
  /** The serverTime of the first `send_ok`. */
  serverTime?: number;
  envelopes: SendEvent['envelopes'];
}

interface Ack {
  index: number;
  event: AckEvent;
  /** Seqs of items delivered on the ack's session before it that the ack covers (DLV-11). */
  covered: number[];
  /** Position of the `pong` that proves the server applied the ack (TRN-34), if one came. */
  confirmedAt?: number;
}

const slot = (device: string, seq: number) => `${device}#${seq}`;
const messageKey = (from: string, messageId: string) => `${from}|${messageId}`;

/** The indexes built once from a history that every check reads. */
class Analysis {
  readonly byAddress = new Map<string, DeviceInfo>();
  readonly helloAt = new Map<string, number>();
  /** Each restart as the positions of its `restart` and `restarted` events (the same one when `restarted` is missing). */
  readonly restarts: Array<{ down: number; up: number }> = [];
  readonly messages = new Map<string, Message>();
  readonly deliveries: Delivery[] = [];
  readonly slots = new Map<string, Delivery[]>();
  /** `${recipient}|${messageKey}` → the seqs the message has in the recipient's queue. */
  readonly seqsOf = new Map<string, Set<number>>();
  readonly acks: Ack[] = [];
  /** Slot → the acks that cover it. */
  readonly acksOf = new Map<string, Ack[]>();

  constructor(readonly history: History) {
    for (const d of history.devices) this.byAddress.set(`${d.userId}/${d.deviceId}`, d);
    const bySession = new Map<string, Map<string, Attempt>>();
    history.events.forEach((event, index) => {
      if (event.kind === 'restart') {
        this.restarts.push({ down: index, up: index });
        return;
      }
      if (event.kind === 'restarted') {
        const last = this.restarts.at(-1);
        if (last) last.up = index;
        return;
      }
      if (!this.helloAt.has(event.session)) this.helloAt.set(event.session, index);
      switch (event.kind) {
        case 'connect':
          this.helloAt.set(event.session, index);
          break;
        case 'send': {
          const key = messageKey(event.device, event.messageId);
          const attempt: Attempt = { index, event };
          const known = this.messages.get(key);
          if (known) known.attempts.push(attempt);
          else this.messages.set(key, { key, from: event.device, messageId: event.messageId, attempts: [attempt], accepted: attempt, envelopes: event.envelopes });
          if (!bySession.has(event.session)) bySession.set(event.session, new Map());
          bySession.get(event.session)!.set(event.id, attempt);
          break;
        }
        case 'send_ok': {
          const attempt = bySession.get(event.session)?.get(event.id);
          if (!attempt) break;
          attempt.ok = { index, event };
          const message = this.messages.get(messageKey(attempt.event.device, attempt.event.messageId))!;
          if (message.okIndex === undefined) {
            message.okIndex = index;
            message.serverTime = event.serverTime;
          }
          if (!event.duplicate && (message.accepted.ok === undefined || message.accepted.ok.event.duplicate)) message.accepted = attempt;
          break;
        }
        case 'deliver': {
          const delivery = { index, event };
          this.deliveries.push(delivery);
          const key = slot(event.device, event.item.seq);
          if (!this.slots.has(key)) this.slots.set(key, []);
          this.slots.get(key)!.push(delivery);
          const item = event.item;
          const sender = item.kind === 'message' ? this.labelOf(item.from) : undefined;
          if (item.kind === 'message' && sender !== undefined) {
            const at = `${event.device}|${messageKey(sender, item.messageId)}`;
            if (!this.seqsOf.has(at)) this.seqsOf.set(at, new Set());
            this.seqsOf.get(at)!.add(item.seq);
          }
          break;
        }
        case 'ack': {
          const covered = this.deliveries
            .filter((d) => d.event.session === event.session && ((event.upTo !== undefined && d.event.item.seq <= event.upTo) || event.seqs?.includes(d.event.item.seq)))
            .map((d) => d.event.item.seq);
          const ack: Ack = { index, event, covered: [...new Set(covered)] };
          this.acks.push(ack);
          for (const seq of ack.covered) {
            const key = slot(event.device, seq);
            if (!this.acksOf.has(key)) this.acksOf.set(key, []);
            this.acksOf.get(key)!.push(ack);
          }
          break;
        }
        case 'pong': {
          for (const ack of this.acks) {
            if (ack.confirmedAt === undefined && ack.event.session === event.session && ack.event.ping === event.id) ack.confirmedAt = index;
          }
          break;
        }
        default:
          break;
      }
    });
  }

  labelOf(address: { userId: string; deviceId: number }): string | undefined {
    return this.byAddress.get(`${address.userId}/${address.deviceId}`)?.label;
  }

  describe(item: Item): string {
    return describeItem(item, (a) => this.labelOf(a) ?? `${a.userId}/${a.deviceId}`);
  }

  at(index: number): string {
    return `${this.history.events[index]!.at.toFixed(1)} ms`;
  }

  /** Whether a crash may have happened after position `from` and before position `to`. */
  restartBetween(from: number, to: number): boolean {
    return this.restarts.some((r) => r.down < to && r.up > from);
  }

  /** Whether a crash may have happened after position `from`. */
  restartAfter(from: number): boolean {
    return this.restarts.some((r) => r.up > from);
  }

  /**
   * Whether the server certainly wrote the frame observed at `later` (on `session`) after an event it had handled by
   * the time the client observed position `earlier` on `earlierSession`: same connection (TCP keeps order), or a
   * connection whose hello the client sent after `earlier`.
   */
  surelyAfter(later: number, session: string, earlier: number, earlierSession: string): boolean {
    return later > earlier && (session === earlierSession || (this.helloAt.get(session) ?? later) > earlier);
  }

  seqs(recipient: string, message: Message): Set<number> {
    return this.seqsOf.get(`${recipient}|${message.key}`) ?? new Set();
  }
}

function lost(a: Analysis): Anomaly[] {
  const out: Anomaly[] = [];
  for (const m of a.messages.values()) {
    const delivered = m.envelopes.some((e) => a.seqs(e.device, m).size > 0);
    if (m.okIndex === undefined && !delivered) continue; // never known to be accepted: the outcome is unknown (TRN-33)
    const since = m.okIndex ?? m.accepted.index;
    const crash = a.restartAfter(since) ? ['DLV-39'] : [];
    const accepted = m.okIndex === undefined ? 'accepted (delivered elsewhere)' : `accepted (send_ok at ${a.at(m.okIndex)})`;
    for (const e of m.envelopes) {
      const seqs = [...a.seqs(e.device, m)];
      if (seqs.length === 0) {
        out.push({ name: 'lost', requirements: [...crash, 'MSG-10', 'DLV-24'], device: e.device, messageIds: [m.messageId], detail: `${m.messageId} from ${m.from} to ${e.device}: ${accepted}, never delivered to ${e.device}` });
      } else if (!seqs.some((seq) => a.acksOf.has(slot(e.device, seq)))) {
        out.push({ name: 'lost', requirements: [...crash, 'DLV-24'], device: e.device, messageIds: [m.messageId], detail: `${m.messageId} from ${m.from} to ${e.device}: delivered as seq ${seqs.join(', ')}, never acknowledged, and not delivered again on a later session` });
      }
    }
  }
  return out;
}

function phantoms(a: Analysis): Anomaly[] {
  const out: Anomaly[] = [];
  const reported = new Set<string>();
  for (const d of a.deliveries) {
    const { device, item } = d.event;
    const key = slot(device, item.seq);
    if (reported.has(key)) continue;
    const problem = phantomOf(a, d);
    if (!problem) continue;
    reported.add(key);
    out.push({ name: 'phantom', device, messageIds: item.kind === 'message' ? [item.messageId] : item.messageIds, requirements: problem.requirements, detail: `${device} got ${a.describe(item)} at ${a.at(d.index)}: ${problem.why}` });
  }
  return out;
}

function phantomOf(a: Analysis, d: Delivery): { requirements: string[]; why: string } | undefined {
  const { device, item } = d.event;
  const sender = a.labelOf(item.from);
  if (item.kind === 'message') {
    if (sender === undefined) return { requirements: ['MSG-13'], why: 'from an address that sent nothing in this scenario' };
    const m = a.messages.get(messageKey(sender, item.messageId));
    if (!m) return { requirements: ['MSG-13'], why: `${sender} never sent ${item.messageId}` };
    const envelope = m.envelopes.find((e) => e.device === device);
    if (!envelope) return { requirements: ['DLV-5', 'MSG-10'], why: `it was addressed to ${m.envelopes.map((e) => e.device).join(', ')}, not ${device}` };
    if (item.envelope.type !== envelope.type || item.envelope.body !== envelope.body) return { requirements: ['MSG-13'], why: `its envelope differs from the one ${sender} sent to ${device}` };
    if (m.serverTime !== undefined && item.serverTime !== m.serverTime) return { requirements: ['MSG-13'], why: `serverTime ${item.serverTime}, but send_ok said ${m.serverTime}` };
    return undefined;
  }
  if (item.status === 'read') return { requirements: ['RCP-11'], why: 'a read receipt, but no device sent one' };
  if (sender === undefined) return { requirements: ['RCP-1'], why: 'from an address that acknowledged nothing in this scenario' };
  for (const messageId of item.messageIds) {
    const m = a.messages.get(messageKey(device, messageId));
    if (!m || !m.envelopes.some((e) => e.device === sender)) return { requirements: ['RCP-1'], why: `${device} never sent ${messageId} to ${sender}` };
    const seqs = a.seqs(sender, m);
    const ackedBefore = [...seqs].some((seq) => (a.acksOf.get(slot(sender, seq)) ?? []).some((ack) => ack.index < d.index));
    if (!ackedBefore) return { requirements: ['RCP-1'], why: `${sender} had not acknowledged ${messageId}` };
  }
  return undefined;
}

function duplicates(a: Analysis): Anomaly[] {
  const out: Anomaly[] = [];
  // An item delivered again after the server applied its acknowledgement, with no crash in between (DLV-15).
  for (const [key, deliveries] of a.slots) {
    for (const ack of a.acksOf.get(key) ?? []) {
      const c = ack.confirmedAt;
      if (c === undefined) continue;
      const again = deliveries.find((d) => a.surelyAfter(d.index, d.event.session, c, ack.event.session) && !a.restartBetween(c, d.index));
      if (!again) continue;
      const item = again.event.item;
      out.push({ name: 'duplicate', requirements: ['DLV-15'], device: again.event.device, messageIds: item.kind === 'message' ? [item.messageId] : item.messageIds, detail: `${again.event.device} got ${a.describe(item)} again at ${a.at(again.index)}, after its ack was applied (pong at ${a.at(c)})` });
      break;
    }
  }
  for (const m of a.messages.values()) {
    // One message enqueued twice in one queue (MSG-10; MSG-14 when the second copy came from a resend).
    for (const e of m.envelopes) {
      const seqs = [...a.seqs(e.device, m)];
      if (seqs.length > 1) {
        out.push({ name: 'duplicate', requirements: m.attempts.length > 1 ? ['MSG-14', 'MSG-10'] : ['MSG-10'], device: e.device, messageIds: [m.messageId], detail: `${m.messageId} from ${m.from} is in ${e.device}'s queue ${seqs.length} times (seqs ${seqs.join(', ')})` });
      }
    }
    // A resend of an accepted message must be recognised, with the original serverTime (MSG-14).
    const original = m.attempts[0]!.ok;
    for (const attempt of m.attempts.slice(1)) {
      const ok = attempt.ok?.event;
      if (!ok || !original) continue;
      if (!ok.duplicate) {
        out.push({ name: 'duplicate', requirements: ['MSG-14'], device: m.from, messageIds: [m.messageId], detail: `the resend of ${m.messageId} by ${m.from} at ${a.at(attempt.index)} was answered duplicate: false` });
      } else if (ok.serverTime !== original.event.serverTime) {
        out.push({ name: 'duplicate', requirements: ['MSG-14'], device: m.from, messageIds: [m.messageId], detail: `the resend of ${m.messageId} by ${m.from} was answered with serverTime ${ok.serverTime}, the original with ${original.event.serverTime}` });
      }
    }
  }
  // Without any crash, one acknowledgement gives one delivered receipt (RCP-1, DLV-14); a crash may duplicate it (RCP-5).
  if (a.restarts.length === 0) {
    const receipts = new Map<string, Set<number>>();
    for (const d of a.deliveries) {
      const item = d.event.item;
      if (item.kind !== 'receipt' || item.status !== 'delivered') continue;
      for (const messageId of new Set(item.messageIds)) {
        const key = `${d.event.device}|${a.labelOf(item.from) ?? '?'}|${messageId}`;
        if (!receipts.has(key)) receipts.set(key, new Set());
        receipts.get(key)!.add(item.seq);
      }
    }
    for (const [key, seqs] of receipts) {
      if (seqs.size < 2) continue;
      const [device, acker, messageId] = key.split('|') as [string, string, string];
      out.push({ name: 'duplicate', requirements: ['RCP-1', 'DLV-14'], device, messageIds: [messageId], detail: `${device} got ${seqs.size} delivered receipts from ${acker} for ${messageId} (seqs ${[...seqs].join(', ')}) without any crash` });
    }
  }
  return out;
}

function reorderings(a: Analysis): Anomaly[] {
  const out: Anomaly[] = [];
  // DLV-31: per (sender device, recipient device), a send that precedes another gets the lower seq.
  const pairs = new Map<string, Array<{ m: Message; seq: number }>>();
  for (const m of a.messages.values()) {
    for (const e of m.envelopes) {
      const seqs = a.seqs(e.device, m);
      if (seqs.size === 0) continue;
      const key = `${m.from}|${e.device}`;
      if (!pairs.has(key)) pairs.set(key, []);
      pairs.get(key)!.push({ m, seq: Math.min(...seqs) });
    }
  }
  for (const [key, list] of pairs) {
    const recipient = key.split('|')[1]!;
    list.sort((x, y) => x.m.accepted.index - y.m.accepted.index);
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const s1 = list[i]!;
        const s2 = list[j]!;
        const sameConnection = s1.m.accepted.event.session === s2.m.accepted.event.session;
        const precedes = sameConnection || (s1.m.okIndex !== undefined && s1.m.okIndex < s2.m.accepted.index);
        if (precedes && s1.seq > s2.seq) {
          out.push({ name: 'reordered', requirements: ['DLV-31'], device: recipient, messageIds: [s1.m.messageId, s2.m.messageId], detail: `${s1.m.from} sent ${s1.m.messageId} before ${s2.m.messageId}${sameConnection ? ' on one connection' : ' (after its send_ok)'}, but ${recipient} has them as seq ${s1.seq} and ${s2.seq}` });
        }
      }
    }
  }
  // DLV-7: on one session, first deliveries come in seq order.
  const sessions = new Map<string, { seen: Set<number>; highest: number }>();
  for (const d of a.deliveries) {
    const { session, item } = d.event;
    if (!sessions.has(session)) sessions.set(session, { seen: new Set(), highest: 0 });
    const s = sessions.get(session)!;
    if (s.seen.has(item.seq)) continue;
    s.seen.add(item.seq);
    if (item.seq < s.highest) {
      out.push({ name: 'reordered', requirements: ['DLV-7'], device: d.event.device, messageIds: item.kind === 'message' ? [item.messageId] : item.messageIds, detail: `session ${session} delivered ${a.describe(item)} for the first time at ${a.at(d.index)}, after seq ${s.highest}` });
    }
    s.highest = Math.max(s.highest, item.seq);
  }
  return out;
}

function receiptsLost(a: Analysis): Anomaly[] {
  const out: Anomaly[] = [];
  // Per (sender, acknowledging device, messageId): the first ack that covered the message, and the first one known to
  // have been applied (a receipt is owed only then); a crash after the first may be why a receipt is missing (RCP-5).
  const expected = new Map<string, { sender: string; acker: string; messageId: string; first: Ack; applied?: Ack }>();
  for (const ack of a.acks) {
    for (const seq of ack.covered) {
      const item = a.slots.get(slot(ack.event.device, seq))?.[0]?.event.item;
      if (item?.kind !== 'message') continue;
      const sender = a.labelOf(item.from);
      const m = sender === undefined ? undefined : a.messages.get(messageKey(sender, item.messageId));
      if (sender === undefined || !m?.envelopes.some((e) => e.device === ack.event.device)) continue; // a phantom, reported as such
      const key = `${sender}|${ack.event.device}|${item.messageId}`;
      if (!expected.has(key)) expected.set(key, { sender, acker: ack.event.device, messageId: item.messageId, first: ack });
      const e = expected.get(key)!;
      if (ack.confirmedAt !== undefined) e.applied ??= ack;
    }
  }
  const got = new Set<string>();
  for (const d of a.deliveries) {
    const item = d.event.item;
    if (item.kind !== 'receipt' || item.status !== 'delivered') continue;
    const acker = a.labelOf(item.from);
    for (const messageId of item.messageIds) got.add(`${d.event.device}|${acker}|${messageId}`);
  }
  for (const [key, e] of expected) {
    if (!e.applied || got.has(key)) continue;
    const crash = a.restartAfter(e.first.index) ? ['RCP-5', 'DLV-39'] : [];
    const earlier = e.first === e.applied ? '' : ` (and first at ${a.at(e.first.index)})`;
    out.push({ name: 'receipt-lost', requirements: [...crash, 'RCP-1'], device: e.sender, messageIds: [e.messageId], detail: `${e.acker} acknowledged ${e.messageId} from ${e.sender} at ${a.at(e.applied.index)}${earlier} (applied: pong at ${a.at(e.applied.confirmedAt!)}), but no delivered receipt for it reached ${e.sender}` });
  }
  return out;
}

function redeliveryFlags(a: Analysis): Anomaly[] {
  const out: Anomaly[] = [];
  for (const deliveries of a.slots.values()) {
    const wrong = deliveries.find((later, j) => later.event.item.redelivered !== true && deliveries.slice(0, j).some((earlier) => a.surelyAfter(later.index, later.event.session, earlier.index, earlier.event.session) && !a.restartBetween(earlier.index, later.index)));
    if (!wrong) continue;
    const item = wrong.event.item;
    out.push({ name: 'redelivery-flag', requirements: ['DLV-10'], device: wrong.event.device, messageIds: item.kind === 'message' ? [item.messageId] : item.messageIds, detail: `${wrong.event.device} got ${a.describe(item)} again at ${a.at(wrong.index)} without redelivered: true` });
  }
  return out;
}

function identity(item: Item): string {
  return item.kind === 'message' ? `message ${item.from.userId}/${item.from.deviceId} ${item.messageId}` : `${item.status} receipt ${item.from.userId}/${item.from.deviceId} ${item.messageIds.join(',')}`;
}

function seqReuses(a: Analysis): Anomaly[] {
  const out: Anomaly[] = [];
  for (const deliveries of a.slots.values()) {
    const first = deliveries[0]!;
    const other = deliveries.find((d) => identity(d.event.item) !== identity(first.event.item));
    if (!other) continue;
    const ids = (item: Item) => (item.kind === 'message' ? [item.messageId] : item.messageIds);
    out.push({ name: 'seq-reused', requirements: ['DLV-3'], device: first.event.device, messageIds: [...ids(first.event.item), ...ids(other.event.item)], detail: `${first.event.device} got ${a.describe(first.event.item)} at ${a.at(first.index)} and ${a.describe(other.event.item)} at ${a.at(other.index)}` });
  }
  return out;
}

/** Every anomaly of a complete history (one that ends after a final drain), in a stable order. */
export function check(history: History): Anomaly[] {
  const a = new Analysis(history);
  return [...lost(a), ...phantoms(a), ...duplicates(a), ...reorderings(a), ...receiptsLost(a), ...redeliveryFlags(a), ...seqReuses(a)];
}

/** What a final drain still waits for: the `lost` and `receipt-lost` anomalies of the history so far. */
export function outstanding(history: History): Anomaly[] {
  const a = new Analysis(history);
  return [...lost(a), ...receiptsLost(a)];
}

/** One line per anomaly: `lost [MSG-10, DLV-24] msg-a1-002 from a1 to b1: …`. */
export function formatAnomalies(anomalies: readonly Anomaly[]): string[] {
  return anomalies.map((x) => `${x.name} [${x.requirements.join(', ')}] ${x.detail}`);
}
