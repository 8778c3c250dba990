// A conversation as a sequence of Alice/Bob actions (after libsignal's rust/protocol/fuzz/fuzz_targets/
// interaction.rs): send, deliver any queued message (so any order), deliver and keep a copy (duplication), replay,
// drop, deliver a mutated copy, deliver the SignalMessage inside a PreKeySignalMessage on its own, lose messages
// (skip), exchange replies back and forth (many DH ratchet steps), start a new session from a bundle (simultaneous
// initiation included), rotate signed prekeys, let time pass. Actions are JSON data: a shrunk counterexample prints
// as a script, and the corpus stores scripts.
import fc from 'fast-check';
import type { Who } from './conversation.ts';
import { mutation as mutationArbitrary, type Mutation } from './mutations.ts';
import { SPEC_LIMITS } from './session-model.ts';
import { World, type Verdict } from './world.ts';

export type Action =
  | { do: 'send'; from: Who; text: string }
  | { do: 'deliver'; to: Who; pick: number; keep?: boolean }
  | { do: 'replay'; to: Who; pick: number }
  | { do: 'drop'; to: Who; pick: number }
  | { do: 'mutate'; to: Who; pick: number; mutation: Mutation }
  | { do: 'unwrap'; to: Who; pick: number }
  | { do: 'round-trips'; from: Who; n: number }
  | { do: 'skip'; from: Who; n: number }
  | { do: 'new-session'; initiator: Who; oneTime: boolean }
  | { do: 'rotate'; who: Who; dropOld: boolean }
  | { do: 'wait'; days: number };

/** Bounds that keep one run small: queued messages per party, sessions per run (well under the 40 archived). */
const MAX_QUEUE = 40;
const MAX_SESSIONS = 6;
const DAY_MS = 24 * 60 * 60 * 1000;

/** Whether `action` can run in `world` now (fast-check skips the others, also while shrinking). */
export function applicable(world: World, action: Action): boolean {
  switch (action.do) {
    case 'send':
      return world.queues[action.from === 'alice' ? 'bob' : 'alice'].length < MAX_QUEUE;
    case 'deliver':
    case 'drop':
    case 'mutate':
      return world.queues[action.to].length > 0;
    case 'replay':
      return world.seen[action.to].length > 0;
    case 'unwrap':
      return world.queues[action.to].some((i) => i.envelope.type === 'prekey');
    case 'skip':
    case 'round-trips':
      return world.parties[action.from].record?.current !== undefined;
    case 'new-session':
      return world.sessionCount < MAX_SESSIONS;
    case 'rotate':
    case 'wait':
      return true;
  }
}

/** Runs `action` on the real conversation and the model together; throws ModelMismatch on any disagreement. */
export function perform(world: World, action: Action): Verdict {
  world.stats.actions++;
  switch (action.do) {
    case 'send':
      return world.send(action.from, Uint8Array.from(Buffer.from(action.text, 'hex')));
    case 'deliver':
      return world.deliver(action.to, action.pick, action.keep === true);
    case 'replay':
      return world.replay(action.to, action.pick);
    case 'drop':
      return world.drop(action.to, action.pick);
    case 'mutate':
      return world.mutate(action.to, action.pick, action.mutation);
    case 'unwrap':
      return world.unwrap(action.to, action.pick);
    case 'round-trips':
      return roundTrips(world, action.from, action.n);
    case 'skip':
      return world.skip(action.from, action.n);
    case 'new-session':
      return world.startSession(action.initiator, action.oneTime);
    case 'rotate':
      return world.rotateSignedPreKey(action.who, action.dropOld);
    case 'wait':
      return world.wait(action.days * DAY_MS);
  }
}

/**
 * `n` exchanges in which `from` sends, the peer receives it at once and answers, and `from` receives the answer: each
 * exchange is a DH ratchet step on both sides, so a few of them reach MAX_RECEIVER_CHAINS. Stops at the first
 * verdict other than 'ok' and returns it.
 */
function roundTrips(world: World, from: Who, n: number): Verdict {
  const to: Who = from === 'alice' ? 'bob' : 'alice';
  for (let i = 0; i < n; i++) {
    for (const [sender, receiver] of [[from, to], [to, from]] as const) {
      const sent = world.send(sender, Uint8Array.of(i));
      if (sent !== 'ok') return sent;
      const received = world.deliver(receiver, world.queues[receiver].length - 1);
      if (received !== 'ok') return received;
    }
  }
  return 'ok';
}

/** One action as a fast-check command; the world is both model and real system (it holds both). */
export class ActionCommand implements fc.Command<World, World> {
  constructor(readonly action: Action) {}
  check(world: Readonly<World>): boolean {
    return applicable(world as World, this.action);
  }
  run(_model: World, world: World): void {
    perform(world, this.action);
    world.verify();
  }
  toString(): string {
    return JSON.stringify(this.action);
  }
}

const who = fc.constantFrom<Who>('alice', 'bob');
const pick = fc.nat(63);

export interface ActionOptions {
  /** Also lose more than MAX_MESSAGE_KEYS or MAX_FORWARD_JUMPS messages at once (seconds of HMAC work each). */
  heavy?: boolean;
}

export function actionArbitrary(options: ActionOptions = {}): fc.Arbitrary<Action> {
  const skipSize = options.heavy
    ? fc.oneof(
        { weight: 8, arbitrary: fc.integer({ min: 1, max: 40 }) },
        { weight: 1, arbitrary: fc.constantFrom(SPEC_LIMITS.MAX_MESSAGE_KEYS + 1, SPEC_LIMITS.MAX_FORWARD_JUMPS, SPEC_LIMITS.MAX_FORWARD_JUMPS + 1) },
      )
    : fc.integer({ min: 1, max: 40 });
  return fc.oneof(
    { weight: 8, arbitrary: fc.record({ do: fc.constant('send' as const), from: who, text: fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('hex')) }) },
    { weight: 8, arbitrary: fc.record({ do: fc.constant('deliver' as const), to: who, pick }) },
    { weight: 1, arbitrary: fc.record({ do: fc.constant('deliver' as const), to: who, pick, keep: fc.constant(true) }) },
    { weight: 1, arbitrary: fc.record({ do: fc.constant('replay' as const), to: who, pick }) },
    { weight: 1, arbitrary: fc.record({ do: fc.constant('drop' as const), to: who, pick }) },
    { weight: 3, arbitrary: fc.record({ do: fc.constant('mutate' as const), to: who, pick, mutation: mutationArbitrary }) },
    { weight: 1, arbitrary: fc.record({ do: fc.constant('unwrap' as const), to: who, pick }) },
    { weight: 1, arbitrary: fc.record({ do: fc.constant('round-trips' as const), from: who, n: fc.integer({ min: 1, max: 6 }) }) },
    { weight: 1, arbitrary: fc.record({ do: fc.constant('skip' as const), from: who, n: skipSize }) },
    { weight: 1, arbitrary: fc.record({ do: fc.constant('new-session' as const), initiator: who, oneTime: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ do: fc.constant('rotate' as const), who, dropOld: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ do: fc.constant('wait' as const), days: fc.constantFrom(1, 29, 31) }) },
  );
}

/**
 * Runs a script from its start: Alice has set up a session from Bob's bundle unless `bare`. Returns each action's
 * verdict ('ok', an E2E code, or 'skipped' when not applicable).
 */
export function runScript(seed: string, actions: readonly Action[], options: { bare?: boolean; oneTime?: boolean } = {}): { world: World; verdicts: string[] } {
  const world = startWorld(seed, options);
  const verdicts: string[] = [];
  for (const action of actions) {
    if (!applicable(world, action)) {
      verdicts.push('skipped');
      continue;
    }
    verdicts.push(perform(world, action));
    world.verify();
  }
  return { world, verdicts };
}

/** Two fresh parties; unless `bare`, Alice has set up a session from Bob's bundle (with a one-time prekey by default). */
export function startWorld(seed: string, options: { bare?: boolean; oneTime?: boolean } = {}): World {
  const world = World.create(seed);
  if (options.bare !== true) world.startSession('alice', options.oneTime ?? true);
  world.verify();
  return world;
}
