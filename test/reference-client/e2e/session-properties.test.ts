// Model-based properties of whole sessions, after libsignal's fuzz target (rust/protocol/fuzz/fuzz_targets/
// interaction.rs): the input is a sequence of Alice/Bob actions — send, deliver (any queued message, so reordering),
// drop, tamper — run against real SessionCiphers. fast-check prints the seed and the shrunk command list on failure.
import t from 'tap';
import fc from 'fast-check';
import * as e2e from '../../../reference-client/e2e/index.ts';
import { errorCode, makePair, other, snapshot, type Pair, type Who } from './harness.ts';

interface InFlight {
  id: number;
  envelope: e2e.E2eEnvelope;
  plaintext: Uint8Array;
  ratchetKey: string;
  counter: number;
  /** Byte range of the embedded SignalMessage inside a prekey body (the authenticated part). */
  authenticated: [number, number];
}

interface Model {
  queues: Record<Who, InFlight[]>;
  hasSession: Record<Who, boolean>;
  /** Receiving chains the receiver has discarded under MAX_RECEIVER_CHAINS: their late messages cannot decrypt. */
  evicted: Record<Who, Set<string>>;
  nextId: number;
  delivered: number;
}

interface Real {
  pair: Pair;
}

type Cmd = fc.Command<Model, Real>;

const chainKeys = (pair: Pair, who: Who): string[] =>
  pair.stores[who].loadSession(other(who))?.current?.receivingChains.map((c) => e2e.toHex(c.ratchetKey)) ?? [];

function describe(envelope: e2e.E2eEnvelope): { ratchetKey: string; counter: number; authenticated: [number, number] } {
  if (envelope.type === 'ratchet') {
    const m = e2e.decodeSignalMessage(envelope.body);
    return { ratchetKey: e2e.toHex(m.ratchetKey), counter: m.counter, authenticated: [0, envelope.body.length] };
  }
  const m = e2e.decodePreKeySignalMessage(envelope.body);
  const start = indexOf(envelope.body, m.message);
  return { ratchetKey: e2e.toHex(m.signalMessage.ratchetKey), counter: m.signalMessage.counter, authenticated: [start, start + m.message.length] };
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

class Send implements Cmd {
  constructor(readonly from: Who, readonly plaintext: Uint8Array) {}
  check = (m: Readonly<Model>) => m.hasSession[this.from] && m.queues[other(this.from)].length < 40;
  run(m: Model, r: Real): void {
    const envelope = r.pair.ciphers[this.from].encrypt(this.plaintext);
    m.queues[other(this.from)].push({ id: m.nextId++, envelope, plaintext: this.plaintext, ...describe(envelope) });
  }
  toString = () => `${this.from} sends ${this.plaintext.length} bytes`;
}

class Deliver implements Cmd {
  constructor(readonly to: Who, readonly pick: number) {}
  check = (m: Readonly<Model>) => m.queues[this.to].length > 0;
  run(m: Model, r: Real): void {
    const queue = m.queues[this.to];
    const [item] = queue.splice(this.pick % queue.length, 1);
    const msg = item!;
    const cipher = r.pair.ciphers[this.to];
    const before = snapshot(r.pair, this.to);
    const chainsBefore = chainKeys(r.pair, this.to);
    if (m.evicted[this.to].has(msg.ratchetKey)) {
      // Beyond MAX_RECEIVER_CHAINS: rejected, nothing changes. [E2E-32]
      if (errorCode(() => cipher.decrypt(msg.envelope)) === undefined) throw new Error(`#${msg.id} on an evicted chain decrypted`);
      if (snapshot(r.pair, this.to) !== before) throw new Error(`#${msg.id} rejection changed the state`);
      return;
    }
    const plaintext = cipher.decrypt(msg.envelope);
    if (e2e.toHex(plaintext) !== e2e.toHex(msg.plaintext)) throw new Error(`#${msg.id} decrypted to other bytes`);
    m.hasSession[this.to] = true;
    m.delivered++;
    const chainsAfter = chainKeys(r.pair, this.to);
    for (const key of chainsBefore) if (!chainsAfter.includes(key)) m.evicted[this.to].add(key);
    // Forward secrecy: the state keeps no key for this message any more. [E2E-35]
    const chain = r.pair.stores[this.to].loadSession(other(this.to))!.current!.receivingChains.find((c) => e2e.toHex(c.ratchetKey) === msg.ratchetKey)!;
    if (chain.index <= msg.counter || chain.messageKeys.some((k) => k.index === msg.counter)) throw new Error(`#${msg.id} key still derivable`);
    // A replay is a duplicate and changes nothing. [E2E-63]
    const after = snapshot(r.pair, this.to);
    const code = errorCode(() => cipher.decrypt(msg.envelope));
    if (code !== 'E2E_DUPLICATE_MESSAGE') throw new Error(`replay of #${msg.id} gave ${String(code)}`);
    if (snapshot(r.pair, this.to) !== after) throw new Error(`replay of #${msg.id} changed the state`);
  }
  toString = () => `deliver to ${this.to} (pick ${this.pick})`;
}

class Drop implements Cmd {
  constructor(readonly to: Who, readonly pick: number) {}
  check = (m: Readonly<Model>) => m.queues[this.to].length > 0;
  run(m: Model): void {
    const queue = m.queues[this.to];
    queue.splice(this.pick % queue.length, 1);
  }
  toString = () => `drop one for ${this.to} (pick ${this.pick})`;
}

class Tamper implements Cmd {
  constructor(readonly to: Who, readonly pick: number, readonly bit: number) {}
  check = (m: Readonly<Model>) => m.queues[this.to].length > 0;
  run(m: Model, r: Real): void {
    const queue = m.queues[this.to];
    const index = this.pick % queue.length;
    const msg = queue[index]!;
    const body = Uint8Array.from(msg.envelope.body);
    const bit = this.bit % (body.length * 8);
    body[bit >> 3]! ^= 1 << (bit & 7);
    const before = snapshot(r.pair, this.to);
    let plaintext: Uint8Array | undefined;
    try {
      plaintext = r.pair.ciphers[this.to].decrypt({ type: msg.envelope.type, body });
    } catch (error) {
      if (!(error instanceof e2e.E2eError)) throw error;
      if (snapshot(r.pair, this.to) !== before) throw new Error(`rejected flip of bit ${bit} changed the state`);
      return;
    }
    // Only the unauthenticated outer fields of a PreKeySignalMessage (8.5.3: version low nibble, registrationId, and
    // ids once the session exists) may change without rejection, and then the plaintext is the one sent.
    const byte = bit >> 3;
    if (byte >= msg.authenticated[0] && byte < msg.authenticated[1]) throw new Error(`flip of authenticated bit ${bit} accepted`);
    if (e2e.toHex(plaintext) !== e2e.toHex(msg.plaintext)) throw new Error(`flip of bit ${bit} changed the plaintext`);
    queue.splice(index, 1); // consumed
    m.hasSession[this.to] = true;
  }
  toString = () => `tamper one for ${this.to} (pick ${this.pick}, bit ${this.bit})`;
}

const who = fc.constantFrom<Who>('alice', 'bob');
const send = fc.tuple(who, fc.uint8Array({ maxLength: 300 })).map(([w, p]) => new Send(w, p));
const commands = [
  send,
  send,
  fc.tuple(who, fc.nat(64)).map(([w, i]) => new Deliver(w, i)),
  fc.tuple(who, fc.nat(64)).map(([w, i]) => new Deliver(w, i)),
  fc.tuple(who, fc.nat(64)).map(([w, i]) => new Drop(w, i)),
  fc.tuple(who, fc.nat(64), fc.nat(100_000)).map(([w, i, b]) => new Tamper(w, i, b)),
];

t.test('any interleaving of sends, deliveries in any order, drops and bit flips', async (t) => {
  let runs = 0;
  let delivered = 0;
  fc.assert(
    fc.property(fc.boolean(), fc.string({ minLength: 1, maxLength: 8 }), fc.commands(commands, { maxCommands: 80, size: '+1' }), (oneTime, seed, cmds) => {
      const pair = makePair(`props/${seed}`, { oneTimePreKey: oneTime });
      const model: Model = {
        queues: { alice: [], bob: [] },
        hasSession: { alice: true, bob: false },
        evicted: { alice: new Set(), bob: new Set() },
        nextId: 1,
        delivered: 0,
      };
      fc.modelRun(() => ({ model, real: { pair } }), cmds);
      runs++;
      delivered += model.delivered;
    }),
    { numRuns: 300 },
  );
  t.ok(runs >= 300, `${runs} runs, ${delivered} messages delivered and checked`);
});

t.test('many DH ratchet steps evict old receiving chains (MAX_RECEIVER_CHAINS) without corrupting the session', async (t) => {
  const pair = makePair('evict');
  const late = pair.ciphers.alice.encrypt(new Uint8Array([1]));
  pair.ciphers.bob.decrypt(pair.ciphers.alice.encrypt(new Uint8Array([2])));
  for (let i = 0; i < e2e.MAX_RECEIVER_CHAINS + 1; i++) {
    pair.ciphers.alice.decrypt(pair.ciphers.bob.encrypt(new Uint8Array([3])));
    pair.ciphers.bob.decrypt(pair.ciphers.alice.encrypt(new Uint8Array([4])));
  }
  t.equal(pair.stores.bob.loadSession('alice')!.current!.receivingChains.length, e2e.MAX_RECEIVER_CHAINS);
  const before = snapshot(pair, 'bob');
  t.equal(errorCode(() => pair.ciphers.bob.decrypt(late)), 'E2E_BAD_MAC', 'a message of a discarded chain fails at the MAC');
  t.equal(snapshot(pair, 'bob'), before, 'and leaves the state unchanged');
  t.same(pair.ciphers.bob.decrypt(pair.ciphers.alice.encrypt(new Uint8Array([5]))), new Uint8Array([5]), 'the session still works');
});
