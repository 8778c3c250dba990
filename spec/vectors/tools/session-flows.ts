// Scripted Alice/Bob exchanges for spec/vectors/e2e/session-flows.json, computed with the independent model of
// e2e-model.ts. Keys come from fixed labels; every key a party draws is listed in draw order, so an implementation
// replays a flow exactly by feeding those private keys to its random source (README rule 6).
import {
  aesDecrypt, aesEncrypt, cat, dh, hex, messageKeys, nextCk, preKeySignalMessage, rootStep, seedOf,
  seededPair, signalMessage, unhex, x3dhKeys, xeddsaSign, type Pair,
} from './e2e-model.ts';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';

type Who = 'alice' | 'bob';
export type Action =
  | { do: 'send'; from: Who; id: string; text: string }
  | { do: 'deliver' | 'deliverAgain'; id: string }
  | { do: 'drop'; id: string }
  | { do: 'tamper'; id: string; byte: number; bit: number };

interface Chain { pub: Uint8Array; ck: Uint8Array; index: number; skipped: Map<number, Uint8Array> }
interface State {
  rootKey: Uint8Array;
  sending: { pair: Pair; ck: Uint8Array; index: number };
  receiving: Chain[];
  prev: number;
  pending?: { preKeyId?: number | undefined; signedPreKeyId: number; baseKey: Uint8Array } | undefined;
}
interface Party { who: Who; identity: Pair; registrationId: number; state?: State; draws: Pair[]; drawCount: number; flow: string }

function draw(p: Party): Pair {
  const pair = seededPair(`${p.flow}/${p.who}/draw${p.drawCount++}`);
  p.draws.push(pair);
  return pair;
}

const clone = (s: State): State => structuredClone(s);

function receive(me: Party, other: Party, body: Uint8Array, ratchetKey: Uint8Array, counter: number, ciphertext: Uint8Array) {
  const s = clone(me.state!);
  let chain = s.receiving.find((c) => hex(c.pub) === hex(ratchetKey));
  let ratchetStep: Record<string, string> | undefined;
  if (!chain) {
    const recv = rootStep(s.rootKey, dh(s.sending.pair.priv, ratchetKey));
    const fresh = draw(me);
    const send = rootStep(recv.rootKey, dh(fresh.priv, ratchetKey));
    chain = { pub: ratchetKey, ck: recv.chainKey, index: 0, skipped: new Map() };
    s.receiving.push(chain);
    if (s.receiving.length > 5) s.receiving.shift();
    s.prev = s.sending.index > 0 ? s.sending.index - 1 : 0;
    s.sending = { pair: fresh, ck: send.chainKey, index: 0 };
    s.rootKey = send.rootKey;
    ratchetStep = { receivingChainKey: hex(recv.chainKey), newRatchetKey: hex(fresh.pub), sendingChainKey: hex(send.chainKey), rootKey: hex(send.rootKey) };
  }
  let seed: Uint8Array;
  if (counter < chain.index) {
    const stored = chain.skipped.get(counter);
    if (!stored) return { error: 'E2E_DUPLICATE_MESSAGE' };
    seed = stored;
    chain.skipped.delete(counter);
  } else {
    let ck = chain.ck;
    for (let i = chain.index; i < counter; i++) {
      chain.skipped.set(i, seedOf(ck));
      ck = nextCk(ck);
    }
    seed = seedOf(ck);
    chain.ck = nextCk(ck);
    chain.index = counter + 1;
  }
  const keys = messageKeys(seed);
  const mac = hmac(sha256, keys.macKey, cat(other.identity.pub, me.identity.pub, body.subarray(0, body.length - 8))).slice(0, 8);
  if (hex(mac) !== hex(body.subarray(body.length - 8))) return { error: 'E2E_BAD_MAC' };
  const plaintext = aesDecrypt(keys.cipherKey, keys.iv, ciphertext);
  s.pending = undefined;
  me.state = s;
  return { plaintext: hex(plaintext), ...(ratchetStep ? { ratchetStep } : {}) };
}

export function makeFlow(tcId: number, name: string, comment: string, useOneTimePreKey: boolean, script: Action[]) {
  const alice: Party = { who: 'alice', identity: seededPair(`${name}/alice/identity`), registrationId: 1111, draws: [], drawCount: 0, flow: name };
  const bob: Party = { who: 'bob', identity: seededPair(`${name}/bob/identity`), registrationId: 2222, draws: [], drawCount: 0, flow: name };
  const spk = seededPair(`${name}/bob/signedPreKey`);
  const opk = useOneTimePreKey ? seededPair(`${name}/bob/oneTimePreKey`) : undefined;
  const z = unhex('5a'.repeat(64));
  const bundle = {
    registrationId: bob.registrationId,
    identityKey: hex(bob.identity.pub),
    signedPreKeyId: 1,
    signedPreKey: hex(spk.pub),
    signedPreKeySignature: hex(xeddsaSign(bob.identity.priv, spk.pub, z)),
    ...(opk ? { preKeyId: 0, preKey: hex(opk.pub) } : {}),
  };
  // Alice processes the bundle (8.3.1): base key, then first ratchet key.
  const base = draw(alice);
  const dhs = [dh(alice.identity.priv, spk.pub), dh(base.priv, bob.identity.pub), dh(base.priv, spk.pub)];
  if (opk) dhs.push(dh(base.priv, opk.pub));
  const x3 = x3dhKeys(dhs);
  const first = draw(alice);
  const rs = rootStep(x3.rootKey, dh(first.priv, spk.pub));
  alice.state = {
    rootKey: rs.rootKey,
    sending: { pair: first, ck: rs.chainKey, index: 0 },
    receiving: [{ pub: spk.pub, ck: x3.chainKey, index: 0, skipped: new Map() }],
    prev: 0,
    pending: { preKeyId: opk ? 0 : undefined, signedPreKeyId: 1, baseKey: base.pub },
  };
  const setup = { baseKey: hex(base.pub), rootKey0: hex(x3.rootKey), chainKey0: hex(x3.chainKey), rootKey1: hex(rs.rootKey), sendingChainKey: hex(rs.chainKey) };

  const sent = new Map<string, { from: Who; body: Uint8Array; type: string; inner: Uint8Array; ratchetKey: Uint8Array; counter: number; ciphertext: Uint8Array }>();
  const steps: unknown[] = [];
  for (const action of script) {
    if (action.do === 'send') {
      const me = action.from === 'alice' ? alice : bob;
      const other = action.from === 'alice' ? bob : alice;
      const s = me.state!;
      const seed = seedOf(s.sending.ck);
      const keys = messageKeys(seed);
      const plaintext = new TextEncoder().encode(action.text);
      const ciphertext = aesEncrypt(keys.cipherKey, keys.iv, plaintext);
      const inner = signalMessage(s.sending.pair.pub, s.sending.index, s.prev, ciphertext, keys.macKey, me.identity.pub, other.identity.pub);
      const body = s.pending
        ? preKeySignalMessage({ preKeyId: s.pending.preKeyId, baseKey: s.pending.baseKey, identityKey: me.identity.pub, message: inner, registrationId: me.registrationId, signedPreKeyId: s.pending.signedPreKeyId })
        : inner;
      const type = s.pending ? 'prekey' : 'ratchet';
      steps.push({
        action: action.from === 'alice' ? 'aliceSends' : 'bobSends', id: action.id, plaintext: hex(plaintext), type, body: hex(body),
        ratchetKey: hex(s.sending.pair.pub), counter: s.sending.index, previousCounter: s.prev, chainKey: hex(s.sending.ck),
        cipherKey: hex(keys.cipherKey), macKey: hex(keys.macKey), iv: hex(keys.iv),
      });
      sent.set(action.id, { from: action.from, body, type, inner, ratchetKey: s.sending.pair.pub, counter: s.sending.index, ciphertext });
      s.sending.ck = nextCk(s.sending.ck);
      s.sending.index++;
      continue;
    }
    const m = sent.get(action.id)!;
    const me = m.from === 'alice' ? bob : alice;
    const other = m.from === 'alice' ? alice : bob;
    if (action.do === 'drop') {
      steps.push({ action: 'drop', id: action.id });
      continue;
    }
    let inner = m.inner;
    let body = m.body;
    if (action.do === 'tamper') {
      body = Uint8Array.from(m.body);
      const at = action.byte < 0 ? body.length + action.byte : action.byte;
      body[at]! ^= 1 << action.bit;
      inner = body; // tamper cases flip MAC bits of SignalMessages only
    }
    let x3dhOut: Record<string, string> | undefined;
    if (m.type === 'prekey' && me.who === 'bob' && !bob.state) {
      const bdh = [dh(spk.priv, alice.identity.pub), dh(bob.identity.priv, base.pub), dh(spk.priv, base.pub)];
      if (opk) bdh.push(dh(opk.priv, base.pub));
      const k = x3dhKeys(bdh);
      bob.state = { rootKey: k.rootKey, sending: { pair: spk, ck: k.chainKey, index: 0 }, receiving: [], prev: 0 };
      x3dhOut = { rootKey0: hex(k.rootKey), chainKey0: hex(k.chainKey) };
    }
    const result = receive(me, other, inner, m.ratchetKey, m.counter, m.ciphertext);
    steps.push({ action: action.do, id: action.id, ...(action.do === 'tamper' ? { byte: action.byte, bit: action.bit, body: hex(body) } : {}), to: me.who, ...(x3dhOut ? { x3dh: x3dhOut } : {}), ...result });
  }
  return {
    tcId, comment, flow: name, result: 'valid',
    alice: { identityPrivate: hex(alice.identity.priv), identityKey: hex(alice.identity.pub), registrationId: alice.registrationId, random: alice.draws.map((p) => hex(p.priv)) },
    bob: {
      identityPrivate: hex(bob.identity.priv), identityKey: hex(bob.identity.pub), registrationId: bob.registrationId,
      signedPreKeyPrivate: hex(spk.priv), ...(opk ? { oneTimePreKeyPrivate: hex(opk.priv) } : {}), random: bob.draws.map((p) => hex(p.priv)),
    },
    bundle, bundleSignatureZ: hex(z), setup, steps,
  };
}

export const FLOWS: Array<{ name: string; comment: string; oneTime: boolean; script: Action[] }> = [
  {
    name: 'basic', comment: 'four DH results; prekey messages until the first reply; a replay is a duplicate', oneTime: true,
    script: [
      { do: 'send', from: 'alice', id: 'a1', text: 'hello bob' },
      { do: 'send', from: 'alice', id: 'a2', text: 'are you there?' },
      { do: 'deliver', id: 'a1' }, { do: 'deliver', id: 'a2' },
      { do: 'send', from: 'bob', id: 'b1', text: 'hi alice' },
      { do: 'deliver', id: 'b1' },
      { do: 'send', from: 'alice', id: 'a3', text: 'now a SignalMessage' },
      { do: 'deliver', id: 'a3' }, { do: 'deliverAgain', id: 'a3' },
    ],
  },
  {
    name: 'out-of-order', comment: 'three DH results; reordering within a chain, a dropped message, late keys used once', oneTime: false,
    script: [
      { do: 'send', from: 'alice', id: 'a1', text: 'one' }, { do: 'send', from: 'alice', id: 'a2', text: 'two' },
      { do: 'send', from: 'alice', id: 'a3', text: 'three' }, { do: 'send', from: 'alice', id: 'a4', text: 'four (dropped)' },
      { do: 'deliver', id: 'a3' }, { do: 'deliver', id: 'a1' }, { do: 'drop', id: 'a4' }, { do: 'deliver', id: 'a2' },
      { do: 'deliverAgain', id: 'a2' },
      { do: 'send', from: 'bob', id: 'b1', text: 'b-one' }, { do: 'send', from: 'bob', id: 'b2', text: 'b-two' },
      { do: 'deliver', id: 'b2' }, { do: 'deliver', id: 'b1' },
      { do: 'send', from: 'alice', id: 'a5', text: 'five' }, { do: 'deliver', id: 'a5' },
      { do: 'send', from: 'bob', id: 'b3', text: 'b-three' }, { do: 'deliver', id: 'b3' },
    ],
  },
  {
    name: 'old-chain', comment: 'a late message on a receiving chain older than the current one; tampering leaves the state unchanged', oneTime: true,
    script: [
      { do: 'send', from: 'alice', id: 'a1', text: 'first' }, { do: 'send', from: 'alice', id: 'a2', text: 'late on chain 1' },
      { do: 'deliver', id: 'a1' },
      { do: 'send', from: 'bob', id: 'b1', text: 'reply' }, { do: 'deliver', id: 'b1' },
      { do: 'send', from: 'alice', id: 'a3', text: 'chain 2' }, { do: 'deliver', id: 'a3' },
      { do: 'deliver', id: 'a2' },
      { do: 'send', from: 'bob', id: 'b2', text: 'tampered then delivered' },
      { do: 'tamper', id: 'b2', byte: -1, bit: 0 },
      { do: 'deliver', id: 'b2' },
    ],
  },
];
