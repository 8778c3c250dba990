// The regression corpus of the client fuzzer: fuzz/corpus/client/*.json, one input per file, in the style of the
// Wycheproof-like vectors of spec/vectors/ (an id, a comment, the requirements, the input, the expected result).
// Every entry is replayed against the client and against the spec model, so an entry can neither rot nor hide a
// model error. Targets:
//   decoder entries   { target: 'decodeSignalMessage' | 'decodePreKeySignalMessage' | 'readMessage' | 'checkPublicKey',
//                       input: hex, expect: { result: 'ok' } | { error: code } }
//   delivery entries  { target: 'deliver', fixture, to, pick, mutation?, body?, expect: { mutated?, genuine } }: a
//                       mutated copy of a message in flight in a fixture (fixtures.ts), then the genuine message;
//                       `body` is the mutated envelope body in hex, checked so that a change of the fixtures' bytes
//                       (a different key draw order, say) shows up here rather than silently changing the input;
//   conversations     { target: 'conversation', seed, setup?, actions: Action[], expect: verdict per action }.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runScript, type Action } from './actions.ts';
import { fixtures } from './fixtures.ts';
import { applyMutation, type Mutation } from './mutations.ts';
import { checkKey, decodePreKey, decodeSignal, readProtobuf } from './properties.ts';
import type { World } from './world.ts';

interface Base {
  id: string;
  comment: string;
  requirements?: string[];
  /** Where the entry came from: a fuzzer counterexample (with its seed and path) or a hand-picked edge case. */
  source?: string;
}

export type CorpusEntry = Base &
  (
    | { target: 'decodeSignalMessage' | 'decodePreKeySignalMessage' | 'readMessage' | 'checkPublicKey'; input: string; expect: { result: 'ok' } | { error: string } }
    | { target: 'deliver'; fixture: string; to: 'alice' | 'bob'; pick: number; mutation?: Mutation; body?: string; expect: { mutated?: string; genuine: string } }
    | { target: 'conversation'; seed: string; setup?: { bare?: boolean; oneTime?: boolean }; actions: Action[]; expect: string[] }
  );

export const CORPUS_DIR = new URL('../corpus/client/', import.meta.url);

export function loadCorpus(dir: URL = CORPUS_DIR): Array<{ file: string; entry: CorpusEntry }> {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((file) => ({ file, entry: JSON.parse(readFileSync(join(dir.pathname, file), 'utf8')) as CorpusEntry }));
}

/** Replays one entry: throws (ClientFinding, ModelMismatch or Error) unless client, model and entry agree. */
export function replay(entry: CorpusEntry): string {
  switch (entry.target) {
    case 'decodeSignalMessage':
    case 'decodePreKeySignalMessage':
    case 'readMessage':
    case 'checkPublicKey': {
      const input = Uint8Array.from(Buffer.from(entry.input, 'hex'));
      if (Buffer.from(input).toString('hex') !== entry.input.toLowerCase()) throw new Error(`${entry.id}: input is not hex`);
      const check = { decodeSignalMessage: decodeSignal, decodePreKeySignalMessage: decodePreKey, readMessage: readProtobuf, checkPublicKey: checkKey }[entry.target];
      const outcome = check(input);
      const expected = 'error' in entry.expect ? entry.expect.error : entry.expect.result;
      if (outcome !== expected) throw new Error(`${entry.id}: ${entry.target} gave ${outcome}, the entry expects ${expected}`);
      return outcome;
    }
    case 'deliver': {
      const fixture = fixtures().find((f) => f.name === entry.fixture);
      if (fixture === undefined) throw new Error(`${entry.id}: no fixture ${entry.fixture}`);
      const world = fixture.world.clone(`corpus/${entry.id}`);
      const outcomes: string[] = [];
      if (entry.mutation !== undefined) {
        const body = mutatedBody(world, entry.to, entry.pick, entry.mutation);
        if (body !== entry.body) throw new Error(`${entry.id}: the fixture's bytes changed; the mutated body is now ${body}`);
        const mutated = world.mutate(entry.to, entry.pick, entry.mutation);
        if (mutated !== entry.expect.mutated) throw new Error(`${entry.id}: the mutated copy gave ${mutated}, the entry expects ${String(entry.expect.mutated)}`);
        outcomes.push(mutated);
      }
      const genuine = world.deliver(entry.to, entry.pick);
      if (genuine !== entry.expect.genuine) throw new Error(`${entry.id}: the genuine message gave ${genuine}, the entry expects ${entry.expect.genuine}`);
      world.verify();
      return [...outcomes, genuine].join(', ');
    }
    case 'conversation': {
      const { verdicts } = runScript(entry.seed, entry.actions, entry.setup);
      if (JSON.stringify(verdicts) !== JSON.stringify(entry.expect)) {
        throw new Error(`${entry.id}: verdicts ${JSON.stringify(verdicts)}, the entry expects ${JSON.stringify(entry.expect)}`);
      }
      return verdicts.join(', ');
    }
  }
}

/** The body `world.mutate(to, pick, mutation)` delivers, in hex. */
export function mutatedBody(world: World, to: 'alice' | 'bob', pick: number, mutation: Mutation): string {
  const queue = world.queues[to];
  const item = queue[pick % queue.length]!;
  return Buffer.from(applyMutation(item.envelope.type, item.envelope.body, mutation)).toString('hex');
}
