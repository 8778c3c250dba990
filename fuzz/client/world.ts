// The real conversation and the spec model side by side. Every action runs on both; every delivery compares the
// real outcome with the model's (the plaintext that was sent, or a rejection with one of the codes the spec allows),
// a rejection must leave the receiver's snapshot byte-for-byte as it was [E2E-62], and after every action the real
// session records, projected onto the model's names, must equal the model's records. Ratchet public keys are given
// names (`s1/K3`) the first time they are seen in a state whose model counterpart says which key it must be.
import * as e2e from '../../reference-client/e2e/index.ts';
import { modelDecodePreKey, modelDecodeSignal, sameBytes } from './codec-model.ts';
import { attempt, Conversation, other, WHO, type Who } from './conversation.ts';
import { applyMutation, type Mutation } from './mutations.ts';
import {
  initiatorState,
  keyName,
  promote,
  receivePreKey,
  receiveSignal,
  send,
  skip,
  type Outcome,
  type PendingIds,
  type Sent,
  type SymParty,
  type SymRecord,
  type SymState,
} from './session-model.ts';

export interface InFlight {
  readonly id: number;
  readonly from: Who;
  readonly envelope: e2e.E2eEnvelope;
  readonly plaintext: Uint8Array;
  readonly sent: Sent;
}

/** A disagreement between the client and the spec model: the fuzzer's finding. */
export class ModelMismatch extends Error {
  override name = 'ModelMismatch';
}

export type Verdict = 'ok' | e2e.E2eErrorCode;

interface SessionInfo {
  initiator: Who;
  ids: PendingIds;
}

const hex = e2e.toHex;
type Codes = ReadonlySet<e2e.E2eErrorCode>;
const codes = (...c: e2e.E2eErrorCode[]): Codes => new Set(c);
/** How a changed SignalMessage that still decodes may be rejected (its MAC no longer matches, or earlier steps fire). */
const CHANGED_SIGNAL = codes('E2E_BAD_MAC', 'E2E_DUPLICATE_MESSAGE', 'E2E_TOO_FAR_AHEAD', 'E2E_NO_SESSION');
/** How a PreKeySignalMessage with a changed authenticated part (inner message, base key, identity key) may be rejected. */
const CHANGED_PREKEY = codes('E2E_BAD_MAC', 'E2E_DUPLICATE_MESSAGE', 'E2E_TOO_FAR_AHEAD', 'E2E_UNKNOWN_PREKEY', 'E2E_INVALID_KEY', 'E2E_UNTRUSTED_IDENTITY');

export interface WorldStats {
  actions: number;
  sent: number;
  decrypted: number;
  rejected: Record<string, number>;
  mutatedAccepted: number;
  sessions: number;
}

export class World {
  readonly parties: Record<Who, SymParty> = { alice: { preKeys: [], signedPreKeys: [1] }, bob: { preKeys: [], signedPreKeys: [1] } };
  readonly queues: Record<Who, InFlight[]> = { alice: [], bob: [] };
  /** Messages delivered (or tried) at least once, for replays. */
  readonly seen: Record<Who, InFlight[]> = { alice: [], bob: [] };
  readonly stats: WorldStats = { actions: 0, sent: 0, decrypted: 0, rejected: {}, mutatedAccepted: 0, sessions: 0 };
  private sessions = new Map<string, SessionInfo>();
  private byBaseKey = new Map<string, string>();
  /** Per session: key hex → name and name → key hex. */
  private names = new Map<string, { byHex: Map<string, string>; byName: Map<string, string> }>();
  private nextId = 1;

  private constructor(readonly conversation: Conversation) {}

  static create(seed: string): World {
    return new World(Conversation.create(seed));
  }

  /** An independent copy (the real stores and the model), for trying many inputs against one fixture. */
  clone(seed: string): World {
    const copy = new World(this.conversation.clone(seed));
    for (const who of WHO) {
      copy.parties[who] = { record: this.parties[who].record, preKeys: [...this.parties[who].preKeys], signedPreKeys: [...this.parties[who].signedPreKeys] };
      copy.queues[who].push(...this.queues[who]);
      copy.seen[who].push(...this.seen[who]);
    }
    copy.sessions = new Map(this.sessions);
    copy.byBaseKey = new Map(this.byBaseKey);
    for (const [s, n] of this.names) copy.names.set(s, { byHex: new Map(n.byHex), byName: new Map(n.byName) });
    copy.nextId = this.nextId;
    return copy;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  // ---- actions -----------------------------------------------------------------------------------------------------

  startSession(initiator: Who, oneTime: boolean): Verdict {
    const { baseKey, bundle } = this.conversation.startSession(initiator, oneTime);
    const session = `s${this.sessions.size + 1}`;
    const ids: PendingIds = { preKeyId: bundle.preKeyId, signedPreKeyId: bundle.signedPreKeyId };
    this.sessions.set(session, { initiator, ids });
    this.byBaseKey.set(hex(baseKey), session);
    this.bind(session, hex(bundle.signedPreKey), keyName(session, 0));
    const party = this.parties[initiator];
    party.record = promote(party.record, initiatorState(session, ids, this.conversation.clock.now));
    if (bundle.preKeyId !== undefined) this.parties[other(initiator)].preKeys.push(bundle.preKeyId);
    this.stats.sessions++;
    return 'ok';
  }

  rotateSignedPreKey(who: Who, dropOld: boolean): Verdict {
    const id = this.conversation.rotateSignedPreKey(who, dropOld);
    const party = this.parties[who];
    party.signedPreKeys = dropOld ? [id] : [...party.signedPreKeys, id];
    return 'ok';
  }

  send(from: Who, plaintext: Uint8Array): Verdict {
    const expected = send(this.parties[from].record, this.conversation.clock.now);
    const before = this.conversation.snapshot(from);
    const real = attempt(() => this.conversation.ciphers[from].encrypt(plaintext));
    if (!expected.ok) {
      if (real.ok) throw new ModelMismatch(`${from} encrypted, but the spec says ${[...expected.codes].join('|')}`);
      if (!expected.codes.has(real.code)) throw new ModelMismatch(`${from} encrypt failed with ${real.code}, spec says ${[...expected.codes].join('|')}`);
      if (this.conversation.snapshot(from) !== before) throw new ModelMismatch(`${from}: failed encrypt changed the state`);
      return real.code;
    }
    if (!real.ok) throw new ModelMismatch(`${from} encrypt failed with ${real.code}, spec says it sends`);
    const { sent } = expected.value;
    const envelope = real.value;
    if (envelope.type !== sent.type) throw new ModelMismatch(`${from} sent a ${envelope.type} envelope, spec says ${sent.type} [E2E-54]`);
    const inner = envelope.type === 'prekey' ? e2e.decodePreKeySignalMessage(envelope.body).signalMessage : e2e.decodeSignalMessage(envelope.body);
    if (inner.counter !== sent.message.counter) throw new ModelMismatch(`${from} wrote counter ${inner.counter}, spec says ${sent.message.counter} [E2E-28]`);
    // The ratchet key sent with gets its name now (a receiver may meet it before the next verify()).
    const name = keyName(sent.message.session, sent.message.step);
    if (this.bind(sent.message.session, hex(inner.ratchetKey), name) !== name) throw new ModelMismatch(`${from} sent with a ratchet key other than ${name}`);
    this.parties[from].record = expected.value.record;
    this.queues[other(from)].push({ id: this.nextId++, from, envelope, plaintext, sent });
    this.stats.sent++;
    return 'ok';
  }

  /** `n` messages encrypted and lost: the sender's current sending chain moves on by `n` (8.4.3 step 5). */
  skip(from: Who, n: number): Verdict {
    const record = this.conversation.record(from);
    const modelRecord = this.parties[from].record;
    if (record?.current === undefined || modelRecord?.current === undefined) return 'E2E_NO_SESSION';
    const state = record.current;
    let chainKey = state.sendingChain.chainKey;
    for (let i = 0; i < n; i++) chainKey = e2e.nextChainKey(chainKey);
    const sendingChain = { ...state.sendingChain, chainKey, index: state.sendingChain.index + n };
    this.conversation.stores[from].storeSession(other(from), { current: { ...state, sendingChain }, archived: record.archived });
    this.parties[from].record = skip(modelRecord, n);
    return 'ok';
  }

  wait(ms: number): Verdict {
    this.conversation.clock.now += ms;
    return 'ok';
  }

  /** Delivers queued message `pick` to `to`; with `keep` a copy stays queued (the network duplicated it). */
  deliver(to: Who, pick: number, keep = false): Verdict {
    const queue = this.queues[to];
    const index = pick % queue.length;
    const item = queue[index]!;
    if (!keep) queue.splice(index, 1);
    return this.deliverGenuine(to, item);
  }

  /** Delivers again a message `to` has already been given. */
  replay(to: Who, pick: number): Verdict {
    const seen = this.seen[to];
    return this.deliverGenuine(to, seen[pick % seen.length]!);
  }

  drop(to: Who, pick: number): Verdict {
    this.queues[to].splice(pick % this.queues[to].length, 1);
    return 'ok';
  }

  /** The SignalMessage inside a queued PreKeySignalMessage, delivered on its own as a `ratchet` envelope. */
  unwrap(to: Who, pick: number): Verdict {
    const prekeys = this.queues[to].filter((i) => i.envelope.type === 'prekey');
    if (prekeys.length === 0) return 'ok';
    const item = prekeys[pick % prekeys.length]!;
    const body = e2e.decodePreKeySignalMessage(item.envelope.body).message;
    return this.check(to, { type: 'ratchet', body }, item, receiveSignal(this.parties[to].record, item.sent.message));
  }

  /** Delivers a mutated copy of queued message `pick`; the original stays queued. */
  mutate(to: Who, pick: number, mutation: Mutation): Verdict {
    const queue = this.queues[to];
    const item = queue[pick % queue.length]!;
    const body = applyMutation(item.envelope.type, item.envelope.body, mutation);
    if (sameBytes(body, item.envelope.body)) return this.deliverGenuine(to, item);
    const verdict = this.check(to, { type: item.envelope.type, body }, item, this.expectMutated(to, item, body));
    if (verdict === 'ok') this.stats.mutatedAccepted++;
    return verdict;
  }

  // ---- expectations ------------------------------------------------------------------------------------------------

  private expectGenuine(to: Who, item: InFlight): Outcome<{ record: SymRecord; usedPreKeyId?: number | undefined }> {
    if (item.envelope.type === 'ratchet') {
      const result = receiveSignal(this.parties[to].record, item.sent.message);
      return result.ok ? { ok: true, value: { record: result.value } } : result;
    }
    const ids = item.sent.pending!;
    return receivePreKey(this.parties[to], { message: item.sent.message, ids, sessionIds: this.sessions.get(item.sent.message.session)!.ids });
  }

  /**
   * What the spec allows for a changed body. A SignalMessage is authenticated whole, so any change is rejected. Of a
   * PreKeySignalMessage only the embedded SignalMessage, and through the keys it yields the base key, identity key
   * and prekey ids, are authenticated (8.5.3): a copy that differs only in the version's low nibble [E2E-41],
   * `registrationId`, unknown fields [E2E-47] or encoding behaves as the original; changed ids matter only when X3DH
   * runs [E2E-56].
   */
  private expectMutated(to: Who, item: InFlight, body: Uint8Array): Outcome<{ record: SymRecord; usedPreKeyId?: number | undefined }> {
    if (item.envelope.type === 'ratchet') {
      const decoded = modelDecodeSignal(body);
      return { ok: false, codes: decoded.ok ? CHANGED_SIGNAL : decoded.codes };
    }
    const decoded = modelDecodePreKey(body);
    if (!decoded.ok) return { ok: false, codes: decoded.codes };
    const original = modelDecodePreKey(item.envelope.body);
    if (!original.ok) throw new ModelMismatch(`message #${item.id} does not decode in the model: ${original.reasons.join('; ')}`);
    const [m, o] = [decoded.value, original.value];
    if (!sameBytes(m.message, o.message) || !sameBytes(m.baseKey, o.baseKey) || !sameBytes(m.identityKey, o.identityKey)) {
      return { ok: false, codes: CHANGED_PREKEY };
    }
    const ids: PendingIds = { preKeyId: m.preKeyId, signedPreKeyId: m.signedPreKeyId };
    return receivePreKey(this.parties[to], { message: item.sent.message, ids, sessionIds: this.sessions.get(item.sent.message.session)!.ids });
  }

  private deliverGenuine(to: Who, item: InFlight): Verdict {
    if (!this.seen[to].includes(item)) this.seen[to].push(item);
    return this.check(to, item.envelope, item, this.expectGenuine(to, item));
  }

  /** Runs one decryption and holds it to `expected`; on success the model commits. */
  private check(to: Who, envelope: e2e.E2eEnvelope, item: InFlight, expected: Outcome<{ record: SymRecord; usedPreKeyId?: number | undefined } | SymRecord>): Verdict {
    const before = this.conversation.snapshot(to);
    const real = attempt(() => this.conversation.ciphers[to].decrypt(envelope));
    const what = `${envelope.type} ${hex(envelope.body)} (from message #${item.id}, ${JSON.stringify(item.sent.message)}) to ${to}`;
    if (!expected.ok) {
      const allowed = [...expected.codes].join('|');
      if (real.ok) {
        const sent = sameBytes(real.value, item.plaintext) ? 'the plaintext sent' : `${hex(real.value)}, never sent`;
        throw new ModelMismatch(`${what} decrypted to ${sent}; the spec says reject (${allowed})`);
      }
      if (!expected.codes.has(real.code)) throw new ModelMismatch(`${what} was rejected with ${real.code}; the spec says ${allowed}`);
      if (this.conversation.snapshot(to) !== before) throw new ModelMismatch(`${what} was rejected (${real.code}) but changed ${to}'s state [E2E-62]`);
      this.stats.rejected[real.code] = (this.stats.rejected[real.code] ?? 0) + 1;
      return real.code;
    }
    if (!real.ok) throw new ModelMismatch(`${what} was rejected with ${real.code}; the spec says it decrypts`);
    if (!sameBytes(real.value, item.plaintext)) throw new ModelMismatch(`${what} decrypted to ${hex(real.value)}, not the ${hex(item.plaintext)} sent`);
    const value = expected.value;
    const party = this.parties[to];
    if ('record' in value) {
      party.record = value.record;
      if (value.usedPreKeyId !== undefined) party.preKeys = party.preKeys.filter((id) => id !== value.usedPreKeyId);
    } else {
      party.record = value;
    }
    this.stats.decrypted++;
    return 'ok';
  }

  // ---- comparing real and model state ------------------------------------------------------------------------------

  private bind(session: string, keyHex: string, name: string): string {
    let n = this.names.get(session);
    if (n === undefined) this.names.set(session, (n = { byHex: new Map(), byName: new Map() }));
    const known = n.byHex.get(keyHex);
    if (known !== undefined) return known;
    if (n.byName.has(name)) return `${name}≠${keyHex.slice(0, 12)}`; // the name stands for another key: a mismatch
    n.byHex.set(keyHex, name);
    n.byName.set(name, keyHex);
    return name;
  }

  private realState(s: e2e.SessionState, hint: SymState | undefined) {
    const base = hex(s.aliceBaseKey);
    const session = this.byBaseKey.get(base) ?? `?${base.slice(0, 12)}`;
    const names = this.names.get(session)?.byHex;
    const sendHex = hex(s.sendingChain.ratchetKeyPair.publicKey);
    const send = hint?.session === session ? this.bind(session, sendHex, keyName(session, hint.step)) : names?.get(sendHex) ?? `?${sendHex.slice(0, 12)}`;
    const p = s.pendingPreKey;
    return {
      session,
      send,
      sendIndex: s.sendingChain.index,
      previousCounter: s.previousCounter,
      pending: p === undefined ? null : { preKeyId: p.preKeyId ?? null, signedPreKeyId: p.signedPreKeyId, createdAt: p.createdAt },
      recv: s.receivingChains.map((c) => ({ key: names?.get(hex(c.ratchetKey)) ?? `?${hex(c.ratchetKey).slice(0, 12)}`, index: c.index, skipped: c.messageKeys.map((k) => k.index) })),
    };
  }

  private modelState(s: SymState) {
    const p = s.pending;
    return {
      session: s.session,
      send: keyName(s.session, s.step),
      sendIndex: s.sendIndex,
      previousCounter: s.previousCounter,
      pending: p === undefined ? null : { preKeyId: p.preKeyId ?? null, signedPreKeyId: p.signedPreKeyId, createdAt: p.createdAt },
      recv: s.recv.map((c) => ({ key: c.key, index: c.index, skipped: [...c.skipped] })),
    };
  }

  /** Throws ModelMismatch unless both parties' records and prekeys are what the model says. */
  verify(): void {
    for (const who of WHO) {
      const real = this.conversation.record(who);
      const model = this.parties[who].record;
      const realView = real === undefined ? null : {
        current: real.current === undefined ? null : this.realState(real.current, model?.current),
        archived: real.archived.map((s, i) => this.realState(s, model?.archived[i])),
      };
      const modelView = model === undefined ? null : {
        current: model.current === undefined ? null : this.modelState(model.current),
        archived: model.archived.map((s) => this.modelState(s)),
      };
      const [r, m] = [JSON.stringify(realView), JSON.stringify(modelView)];
      if (r !== m) throw new ModelMismatch(`${who}'s session record differs from the spec model:\n  real:  ${r}\n  model: ${m}`);
      const store = this.conversation.stores[who];
      const sorted = (xs: Iterable<number>) => JSON.stringify([...xs].sort((a, b) => a - b));
      if (sorted(store.preKeys.keys()) !== sorted(this.parties[who].preKeys)) {
        throw new ModelMismatch(`${who}'s one-time prekeys ${sorted(store.preKeys.keys())}, model ${sorted(this.parties[who].preKeys)} [E2E-58]`);
      }
      if (sorted(store.signedPreKeys.keys()) !== sorted(this.parties[who].signedPreKeys)) throw new ModelMismatch(`${who}'s signed prekeys differ from the model`);
    }
  }
}
