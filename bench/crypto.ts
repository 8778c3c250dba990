// `npm run bench:crypto`: throughput of the E2E layer (reference-client/e2e) for 256-byte messages, with libsignal
// (@signalapp/libsignal-client, native) measured in the same run as the baseline when it loads. Three figures:
//  - setup: Bob issues a bundle (signed prekey signed with XEdDSA, one-time prekey), Alice processes it, encrypts one
//    message, Bob decrypts it (X3DH on both sides plus Bob's first DH ratchet step);
//  - one-direction: encrypt + decrypt on an established session, always Alice → Bob (no DH ratchet step);
//  - ping-pong: alternate directions, so every message triggers a DH ratchet step at its receiver.
// Writes bench/results/crypto.json. Randomness is seeded (our side) so runs are comparable.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as e2e from '../reference-client/e2e/index.ts';
import { loadLibsignal, makeLibsignalDevice, type Libsignal } from './crypto-libsignal.ts';

const MESSAGE_BYTES = 256;
const DURATION_MS = Number(process.env.BENCH_MS ?? 4000); // per figure and contender, split into ROUNDS slices
const TARGETS = { oneDirection: 1.0, pingPong: 0.5, setup: 0.5 } as const; // ratios to libsignal from the issue

async function rate(run: () => unknown | Promise<unknown>, duration: number): Promise<{ n: number; ms: number }> {
  const warmUntil = performance.now() + Math.min(100, duration / 4);
  while (performance.now() < warmUntil) await run();
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < duration) {
    await run();
    n++;
    now = performance.now();
  }
  return { n, ms: now - start };
}

type Figures = Record<'setup' | 'oneDirection' | 'pingPong', () => unknown | Promise<unknown>>;

function ours(backend: e2e.BackendName): Figures {
  e2e.setCryptoBackend(backend);
  const random = e2e.seededRandom(`bench/${backend}`);
  const payload = random(MESSAGE_BYTES);
  const bob = e2e.InMemoryProtocolStore.create(random);
  let n = 0;
  const setup = () => {
    const alice = e2e.InMemoryProtocolStore.create(random);
    const bundle = bob.makeBundle(random, 1, n % 0xffffff);
    e2e.processPreKeyBundle(alice, 'bob', bundle, { random });
    const address = `alice${n++}`;
    new e2e.SessionCipher(bob, address, { random }).decrypt(new e2e.SessionCipher(alice, 'bob', { random }).encrypt(payload));
    bob.sessions.delete(address);
  };
  const alice = e2e.InMemoryProtocolStore.create(random);
  e2e.processPreKeyBundle(alice, 'bob', bob.makeBundle(random, 2, 1), { random });
  const a = new e2e.SessionCipher(alice, 'bob', { random });
  const b = new e2e.SessionCipher(bob, 'alice', { random });
  b.decrypt(a.encrypt(payload));
  a.decrypt(b.encrypt(payload));
  const oneDirection = () => b.decrypt(a.encrypt(payload));
  let turn = 0;
  const pingPong = () => (turn++ % 2 === 0 ? b.decrypt(a.encrypt(payload)) : a.decrypt(b.encrypt(payload)));
  return { setup, oneDirection, pingPong };
}

async function libsignal(lib: Libsignal): Promise<Figures> {
  const payload = Buffer.alloc(MESSAGE_BYTES, 7);
  const bob = makeLibsignalDevice(lib, 2);
  const bobAddress = lib.ProtocolAddress.new('bob', 1);
  let n = 0;
  const bundleOf = (b: ReturnType<typeof bob.makeBundle>) =>
    lib.PreKeyBundle.new(b.registrationId, 1, b.preKeyId ?? null, b.preKey ?? null, b.signedPreKeyId, b.signedPreKey, b.signature, b.identityKey);
  const setup = async () => {
    const alice = makeLibsignalDevice(lib, 1);
    const b = bob.makeBundle(1, n % 0xffffff);
    await lib.processPreKeyBundle(bundleOf(b), bobAddress, alice.stores.sessions, alice.stores.identities);
    const aliceAddress = lib.ProtocolAddress.new(`alice${n++}`, 1);
    await bob.decrypt(aliceAddress, await alice.encrypt(bobAddress, payload));
  };
  const alice = makeLibsignalDevice(lib, 1);
  const aliceAddress = lib.ProtocolAddress.new('alice', 1);
  await lib.processPreKeyBundle(bundleOf(bob.makeBundle(2, 1)), bobAddress, alice.stores.sessions, alice.stores.identities);
  await bob.decrypt(aliceAddress, await alice.encrypt(bobAddress, payload));
  await alice.decrypt(bobAddress, await bob.encrypt(aliceAddress, payload));
  const oneDirection = async () => bob.decrypt(aliceAddress, await alice.encrypt(bobAddress, payload));
  let turn = 0;
  const pingPong = async () =>
    turn++ % 2 === 0 ? bob.decrypt(aliceAddress, await alice.encrypt(bobAddress, payload)) : alice.decrypt(bobAddress, await bob.encrypt(aliceAddress, payload));
  return { setup, oneDirection, pingPong };
}

/**
 * The machine may be shared, so the contenders run in alternating slices (ROUNDS × DURATION_MS / ROUNDS each) and
 * each figure is the total count over the total time: load changes hit all of them alike.
 */
const ROUNDS = 4;
async function measure(contenders: Record<string, Figures>, backends: Record<string, e2e.BackendName>) {
  const out: Record<string, Record<string, number>> = {};
  for (const name of Object.keys(contenders)) out[name] = {};
  for (const figure of ['setup', 'oneDirection', 'pingPong'] as const) {
    const totals: Record<string, { n: number; ms: number }> = {};
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, figures] of Object.entries(contenders)) {
        e2e.setCryptoBackend(backends[name] ?? 'node');
        const r = await rate(figures[figure], DURATION_MS / ROUNDS);
        totals[name] = { n: (totals[name]?.n ?? 0) + r.n, ms: (totals[name]?.ms ?? 0) + r.ms };
      }
    }
    for (const [name, t] of Object.entries(totals)) out[name]![figure] = (t.n * 1000) / t.ms;
  }
  e2e.setCryptoBackend('node');
  return out;
}

const fmt = (x: number) => x.toFixed(0).padStart(8);
const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  node: process.version,
  messageBytes: MESSAGE_BYTES,
  durationMsPerFigure: DURATION_MS,
  unit: 'operations per second (setup: sessions; oneDirection, pingPong: messages encrypted and decrypted)',
};
const { lib, reason } = await loadLibsignal();
const contenders: Record<string, Figures> = { tickwire: ours('node'), portable: ours('noble') };
if (lib) contenders.libsignal = await libsignal(lib);
const m = await measure(contenders, { tickwire: 'node', portable: 'noble' });
const tickwire = m.tickwire!;
const portable = m.portable!;
results.tickwire = tickwire;
results.tickwirePortable = portable;
console.log(`figure          tickwire  portable  libsignal  ratio  target`);
if (lib) {
  const base = m.libsignal!;
  results.libsignal = { package: '@signalapp/libsignal-client', ...base };
  const ratios: Record<string, number> = {};
  let pass = true;
  for (const key of ['setup', 'oneDirection', 'pingPong'] as const) {
    ratios[key] = Number((tickwire[key]! / base[key]!).toFixed(3));
    pass &&= ratios[key] >= TARGETS[key];
    console.log(`${key.padEnd(14)}${fmt(tickwire[key]!)}  ${fmt(portable[key]!)}  ${fmt(base[key]!)}  ${ratios[key]!.toFixed(2).padStart(5)}  ≥ ${TARGETS[key]}`);
  }
  results.ratios = ratios;
  results.targets = TARGETS;
  results.targetsMet = pass;
} else {
  results.libsignal = { skipped: reason };
  for (const key of ['setup', 'oneDirection', 'pingPong'] as const) console.log(`${key.padEnd(14)}${fmt(tickwire[key]!)}  ${fmt(portable[key]!)}       n/a`);
  console.log(`libsignal baseline skipped: ${reason}`);
}
const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'crypto.json'), JSON.stringify(results, null, 2) + '\n');
console.log(`wrote ${join('bench', 'results', 'crypto.json')}`);
