// Conversations stopped at interesting points, each with messages in flight that would decrypt if delivered now:
// the first PreKeySignalMessages (with and without a one-time prekey), later ones of a session the responder already
// has, a reply that makes the initiator ratchet, late and early messages of an established chain, a message for an
// archived state, and simultaneous initiation. Built once from scripts (deterministic seeds); properties clone them.
import { runScript, type Action } from './actions.ts';
import type { Who } from './conversation.ts';
import type { World } from './world.ts';

export interface Fixture {
  name: string;
  world: World;
  /** Parties with messages in flight to them. */
  receivers: Who[];
}

const send = (from: Who, text = '00'): Action => ({ do: 'send', from, text });
const deliver = (to: Who, pick = 0): Action => ({ do: 'deliver', to, pick });
const roundTrip: Action[] = [send('alice', 'a1'), deliver('bob'), send('bob', 'b1'), deliver('alice')];

const SCRIPTS: Array<{ name: string; bare?: boolean; oneTime?: boolean; actions: Action[] }> = [
  { name: 'first-prekey', actions: [send('alice', '01'), send('alice', ''), send('alice', '0303030303030303030303030303030303')] },
  { name: 'first-prekey-three-dh', oneTime: false, actions: [send('alice', '01'), send('alice', '02')] },
  { name: 'prekey-continued', actions: [send('alice', '01'), send('alice', '02'), send('alice', '03'), deliver('bob', 0), send('bob', '04')] },
  {
    name: 'established',
    actions: [...roundTrip, ...roundTrip, send('alice', '10'), send('alice', '11'), send('alice', '12'), send('alice', '13'), deliver('bob', 1), send('bob', '14')],
  },
  {
    name: 'archived-state',
    actions: [...roundTrip, { do: 'new-session', initiator: 'alice', oneTime: true }, send('alice', '20'), send('alice', '21'), send('bob', '22'), send('bob', '23')],
  },
  {
    name: 'simultaneous-initiation',
    bare: true,
    actions: [
      { do: 'new-session', initiator: 'alice', oneTime: true },
      { do: 'new-session', initiator: 'bob', oneTime: false },
      send('alice', '30'),
      send('bob', '31'),
      send('alice', '32'),
    ],
  },
];

let built: Fixture[] | undefined;

/** The fixtures, built on first use (about a second of key generation and signing). */
export function fixtures(): Fixture[] {
  built ??= SCRIPTS.map(({ name, bare, oneTime, actions }) => {
    const { world, verdicts } = runScript(`fixture/${name}`, actions, { bare: bare === true, oneTime: oneTime ?? true });
    const failed = verdicts.findIndex((v) => v !== 'ok');
    if (failed >= 0) throw new Error(`fixture ${name}: action ${failed} gave ${verdicts[failed]}`);
    const receivers = (['alice', 'bob'] as const).filter((who) => world.queues[who].length > 0);
    return { name, world, receivers };
  });
  return built;
}
