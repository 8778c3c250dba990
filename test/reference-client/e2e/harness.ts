// A two-party harness for E2E tests: Alice and Bob with in-memory stores, seeded randomness and a session set up
// from Bob's bundle. Helpers snapshot a store's session record as JSON for "no state change" assertions.
import * as e2e from '../../../reference-client/e2e/index.ts';

export type Who = 'alice' | 'bob';
export const other = (who: Who): Who => (who === 'alice' ? 'bob' : 'alice');

export interface Pair {
  random: e2e.RandomSource;
  stores: Record<Who, e2e.InMemoryProtocolStore>;
  ciphers: Record<Who, e2e.SessionCipher>;
  clock: { now: number };
}

export function makePair(seed: string, options: { oneTimePreKey?: boolean } = {}): Pair {
  const random = e2e.seededRandom(seed);
  const clock = { now: 1_700_000_000_000 };
  const stores = { alice: e2e.InMemoryProtocolStore.create(random), bob: e2e.InMemoryProtocolStore.create(random) };
  const bundle = stores.bob.makeBundle(random, 1, options.oneTimePreKey === false ? undefined : 100);
  const opts = { random, now: () => clock.now };
  e2e.processPreKeyBundle(stores.alice, 'bob', bundle, opts);
  const ciphers = { alice: new e2e.SessionCipher(stores.alice, 'bob', opts), bob: new e2e.SessionCipher(stores.bob, 'alice', opts) };
  return { random, stores, ciphers, clock };
}

/** The serialised session record `who` holds for its peer ('' when none). */
export function snapshot(pair: Pair, who: Who): string {
  const record = pair.stores[who].loadSession(other(who));
  const prekeys = [...pair.stores[who].preKeys.keys()].join(',');
  const identity = pair.stores[who].recordedIdentity(other(who));
  return JSON.stringify({ record: record ? e2e.serializeSessionRecord(record) : null, prekeys, identity: identity ? e2e.toHex(identity) : null });
}

export function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    if (error instanceof e2e.E2eError) return error.code;
    throw error;
  }
}
