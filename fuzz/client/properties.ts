// The client fuzzer's properties, each a function of the number of runs so the quick test and the long run share
// them. fast-check throws on a failure with the seed, the replay path and the shrunk counterexample in its message.
//  1. decoders: any bytes either decode to what the spec model says or are rejected with an E2eError whose code the
//     spec allows; the same bytes given to a real session are rejected without any state change.
//  2. mutations: a mutated copy of a message in flight is rejected with no state change (or, for the unauthenticated
//     parts of a PreKeySignalMessage, behaves exactly as the original), and the original still decrypts.
//  3. conversations: any sequence of Alice/Bob actions matches the spec model delivery by delivery, state by state.
import fc from 'fast-check';
import * as e2e from '../../reference-client/e2e/index.ts';
import { readMessage } from '../../reference-client/e2e/protobuf.ts';
import { ActionCommand, actionArbitrary, startWorld } from './actions.ts';
import { modelDecodePreKey, modelDecodeSignal, parseFields, publicKeyValid, sameBytes, type ModelPreKey, type ModelSignal, type Verdict } from './codec-model.ts';
import { attempt } from './conversation.ts';
import { fixtures } from './fixtures.ts';
import { anyBody, keyBytes } from './inputs.ts';
import { applyMutation, mutation, type Mutation } from './mutations.ts';
import type { World } from './world.ts';

/** Runs per property in the quick test (test/fuzz/client.test.ts); the long run multiplies them. */
export const QUICK_RUNS = { decoders: 1500, mutations: 1000, conversations: 120 } as const;
/** The quick test's fixed fast-check seed. */
export const QUICK_SEED = 20_250_601;

export interface PropertyOptions {
  runs: number;
  /** fast-check seed; the test fixes one, the long run draws one and prints it. */
  seed?: number | undefined;
  /** fast-check replay path, printed with a failure. */
  path?: string | undefined;
  /** Conversations also lose more than MAX_MESSAGE_KEYS or MAX_FORWARD_JUMPS messages at once. */
  heavy?: boolean | undefined;
}

export interface PropertyReport {
  property: string;
  runs: number;
  seed: number | undefined;
  ms: number;
  /** Outcomes seen, by code (`ok` for a decryption or a successful decode). */
  outcomes: Record<string, number>;
}

/** A finding: the client disagrees with the spec. */
export class ClientFinding extends Error {
  override name = 'ClientFinding';
}

const hex = e2e.toHex;

function tally(outcomes: Record<string, number>, key: string): void {
  outcomes[key] = (outcomes[key] ?? 0) + 1;
}

function run<Ts>(property: string, options: PropertyOptions, prop: fc.IProperty<Ts>, outcomes: Record<string, number>): PropertyReport {
  const start = performance.now();
  fc.assert(prop, { numRuns: options.runs, seed: options.seed, path: options.path, includeErrorInReport: true });
  return { property, runs: options.runs, seed: options.seed, ms: Math.round(performance.now() - start), outcomes };
}

// ---- 1. decoders ---------------------------------------------------------------------------------------------------

type Decoded = ReturnType<typeof e2e.decodeSignalMessage>;

function signalDiff(real: Decoded, model: ModelSignal): string | undefined {
  if (real.version !== model.version) return `version ${real.version} ≠ ${model.version}`;
  if (!sameBytes(real.ratchetKey, model.ratchetKey)) return 'ratchetKey';
  if (real.counter !== model.counter) return `counter ${real.counter} ≠ ${model.counter}`;
  if (real.previousCounter !== model.previousCounter) return `previousCounter ${real.previousCounter} ≠ ${model.previousCounter}`;
  if (!sameBytes(real.ciphertext, model.ciphertext)) return 'ciphertext';
  return undefined;
}

function preKeyDiff(real: ReturnType<typeof e2e.decodePreKeySignalMessage>, model: ModelPreKey): string | undefined {
  if (real.version !== model.version) return `version ${real.version} ≠ ${model.version}`;
  if (real.preKeyId !== model.preKeyId) return `preKeyId ${real.preKeyId} ≠ ${model.preKeyId}`;
  if (!sameBytes(real.baseKey, model.baseKey)) return 'baseKey';
  if (!sameBytes(real.identityKey, model.identityKey)) return 'identityKey';
  if (!sameBytes(real.message, model.message)) return 'message';
  if (real.registrationId !== model.registrationId) return `registrationId ${real.registrationId} ≠ ${model.registrationId}`;
  if (real.signedPreKeyId !== model.signedPreKeyId) return `signedPreKeyId ${real.signedPreKeyId} ≠ ${model.signedPreKeyId}`;
  return signalDiff(real.signalMessage, model.signalMessage);
}

/**
 * Holds one decoder to the model on `body`: only E2eError, only codes the model allows, the model's value on success.
 * Returns the outcome ('ok' or the code).
 */
export function checkDecoder<R, M>(name: string, body: Uint8Array, real: (b: Uint8Array) => R, model: (b: Uint8Array) => Verdict<M>, diff: (r: R, m: M) => string | undefined): string {
  const expected = model(body);
  let value: R;
  try {
    value = real(body);
  } catch (error) {
    if (!(error instanceof e2e.E2eError)) throw new ClientFinding(`${name}(${hex(body)}) threw ${String(error)}, not an E2eError`);
    if (expected.ok) throw new ClientFinding(`${name}(${hex(body)}) rejected a valid body with ${error.code}`);
    if (!expected.codes.has(error.code)) {
      throw new ClientFinding(`${name}(${hex(body)}) rejected with ${error.code}; the spec allows ${[...expected.codes].join('|')} (${expected.reasons.join('; ')})`);
    }
    return error.code;
  }
  if (!expected.ok) throw new ClientFinding(`${name}(${hex(body)}) accepted a body the spec rejects: ${expected.reasons.join('; ')}`);
  const d = diff(value, expected.value);
  if (d !== undefined) throw new ClientFinding(`${name}(${hex(body)}) decoded ${d}`);
  return 'ok';
}

export const decodeSignal = (body: Uint8Array): string => checkDecoder('decodeSignalMessage', body, e2e.decodeSignalMessage, modelDecodeSignal, signalDiff);
export const decodePreKey = (body: Uint8Array): string => checkDecoder('decodePreKeySignalMessage', body, e2e.decodePreKeySignalMessage, modelDecodePreKey, preKeyDiff);

/** readMessage with no known fields: accepts exactly the well-formed protobufs [E2E-43], [E2E-47]. */
export function readProtobuf(bytes: Uint8Array): string {
  const result = attempt(() => readMessage(bytes, new Map()));
  const wellFormed = parseFields(bytes).ok;
  if (result.ok !== wellFormed || (!result.ok && result.code !== 'E2E_MALFORMED_MESSAGE')) {
    throw new ClientFinding(`readMessage(${hex(bytes)}) ${result.ok ? 'accepted' : `rejected (${result.code})`}; the spec says ${wellFormed ? 'accept' : 'E2E_MALFORMED_MESSAGE'}`);
  }
  return result.ok ? 'ok' : result.code;
}

/** checkPublicKey accepts exactly [E2E-4] to [E2E-6]; checkBaseKey never accepts what they reject. */
export function checkKey(key: Uint8Array): string {
  const valid = publicKeyValid(key);
  const result = attempt(() => e2e.checkPublicKey(key));
  if (result.ok !== valid || (!result.ok && result.code !== 'E2E_INVALID_KEY')) {
    throw new ClientFinding(`checkPublicKey(${hex(key)}) ${result.ok ? 'accepted' : `rejected (${result.code})`}; the spec says ${valid ? 'accept' : 'E2E_INVALID_KEY'}`);
  }
  const base = attempt(() => e2e.checkBaseKey(key));
  if ((base.ok && !valid) || (!base.ok && base.code !== 'E2E_INVALID_KEY')) throw new ClientFinding(`checkBaseKey(${hex(key)}) gave ${base.ok ? 'ok' : base.code}`);
  return result.ok ? 'ok' : result.code;
}

/**
 * Hands `body` to a real receiver as an envelope of `type`: it is rejected with an E2eError and no state change
 * [E2E-62], or (a body made from a message in flight) yields that message's plaintext and nothing else.
 */
export function deliverArbitrary(world: World, to: 'alice' | 'bob', type: e2e.EnvelopeType, body: Uint8Array): string {
  const conversation = world.conversation;
  const before = conversation.snapshot(to);
  let result;
  try {
    result = attempt(() => conversation.ciphers[to].decrypt({ type, body }));
  } catch (error) {
    throw new ClientFinding(`decrypt of ${type} ${hex(body)} threw ${String(error)}, not an E2eError`);
  }
  if (result.ok) {
    const plaintext = result.value;
    if (!world.queues[to].some((item) => sameBytes(item.plaintext, plaintext))) {
      throw new ClientFinding(`decrypt of ${type} ${hex(body)} returned ${hex(plaintext)}, which was never sent`);
    }
    return 'ok';
  }
  if (conversation.snapshot(to) !== before) throw new ClientFinding(`rejected ${type} ${hex(body)} (${result.code}) changed ${to}'s state`);
  return result.code;
}

export function decoderProperty(options: PropertyOptions): PropertyReport {
  const outcomes: Record<string, number> = {};
  const fixtureList = fixtures();
  const input = fc.oneof(
    { weight: 3, arbitrary: anyBody },
    // Real messages, mutated: bodies one step from valid.
    { weight: 2, arbitrary: fc.tuple(fc.nat(), fc.nat(), mutation).map(([f, p, m]) => mutatedBody(fixtureList, f, p, m)) },
    // The receiver's base64 step (Buffer.from(body, 'base64') in reference-client/receiver.ts) on any text.
    { weight: 1, arbitrary: fc.string({ maxLength: 120 }).map((s) => new Uint8Array(Buffer.from(s, 'base64'))) },
  );
  const prop = fc.property(input, keyBytes, fc.nat(), fc.boolean(), (body, key, f, prekey) => {
    tally(outcomes, `signal:${decodeSignal(body)}`);
    tally(outcomes, `prekey:${decodePreKey(body)}`);
    readProtobuf(body);
    readProtobuf(body.subarray(1));
    checkKey(key);
    checkKey(body.subarray(0, 33));
    const fixture = fixtureList[f % fixtureList.length]!;
    const world = fixture.world.clone(`decoders/${f}`);
    const to = fixture.receivers[f % fixture.receivers.length]!;
    // The type the body decodes as, when it decodes, so that decryption gets past the decoder.
    const type = modelDecodePreKey(body).ok ? 'prekey' : modelDecodeSignal(body).ok ? 'ratchet' : prekey ? 'prekey' : 'ratchet';
    tally(outcomes, `decrypt:${deliverArbitrary(world, to, type, body)}`);
  });
  return run('decoders', options, prop, outcomes);
}

function mutatedBody(list: ReturnType<typeof fixtures>, f: number, pick: number, m: Mutation): Uint8Array {
  const fixture = list[f % list.length]!;
  const queue = fixture.world.queues[fixture.receivers[pick % fixture.receivers.length]!];
  const item = queue[pick % queue.length]!;
  return applyMutation(item.envelope.type, item.envelope.body, m);
}

// ---- 2. mutated envelopes ------------------------------------------------------------------------------------------

export function mutationProperty(options: PropertyOptions): PropertyReport {
  const outcomes: Record<string, number> = {};
  const fixtureList = fixtures();
  const prop = fc.property(fc.nat(fixtureList.length - 1), fc.constantFrom<'alice' | 'bob'>('alice', 'bob'), fc.nat(7), mutation, (f, side, pick, m) => {
    const fixture = fixtureList[f]!;
    const to = fixture.receivers.includes(side) ? side : fixture.receivers[0]!;
    const world = fixture.world.clone(`mutations/${f}/${pick}`);
    const index = pick % world.queues[to].length;
    const original = world.queues[to][index]!.envelope;
    const identical = sameBytes(applyMutation(original.type, original.body, m), original.body);
    const mutated = world.mutate(to, index, m);
    tally(outcomes, identical ? 'mutated:identical' : `mutated:${mutated}`);
    // The original is still in flight and, unless the copy counted as the original (8.5.3), still decrypts.
    const genuine = world.deliver(to, index);
    if (mutated !== 'ok' && genuine !== 'ok') throw new ClientFinding(`after a rejected mutation (${mutated}) the genuine message gave ${genuine}`);
    tally(outcomes, `genuine:${genuine}`);
    world.verify();
  });
  return run('mutations', options, prop, outcomes);
}

// ---- 3. conversations ----------------------------------------------------------------------------------------------

export function conversationProperty(options: PropertyOptions): PropertyReport {
  const outcomes: Record<string, number> = {};
  const commands = fc.commands([actionArbitrary({ heavy: options.heavy === true }).map((a) => new ActionCommand(a))], { maxCommands: 60, size: '+1' });
  const prop = fc.property(fc.nat(), fc.boolean(), commands, (seed, oneTime, cmds) => {
    const world = startWorld(`conversation/${seed}`, { oneTime });
    fc.modelRun(() => ({ model: world, real: world }), cmds);
    outcomes['ok'] = (outcomes['ok'] ?? 0) + world.stats.decrypted;
    for (const [code, n] of Object.entries(world.stats.rejected)) outcomes[code] = (outcomes[code] ?? 0) + n;
    outcomes['mutated-accepted'] = (outcomes['mutated-accepted'] ?? 0) + world.stats.mutatedAccepted;
  });
  return run('conversations', options, prop, outcomes);
}
