// The machinery a campaign and a replay share: the identities on the server (world.ts), one lane per concurrent
// worker (its long-lived session, its HTTP connection, its placeholder bindings), running inputs on the lanes, and
// the batch oracles (health, victim, janitor, memory).
import type { InputClass, FuzzInput } from './input.ts';
import { Slots, newRun, execute, type Lane } from './execute.ts';
import type { InputRun, Watch } from './oracles/answers.ts';
import type { Finding } from './oracles/finding.ts';
import { checkHealth } from './oracles/health.ts';
import { MemoryWatch, type MemoryOptions } from './oracles/memory.ts';
import { checkVictim, janitor } from './oracles/victim.ts';
import { LaneSession } from './session.ts';
import { bindingsFor, setUpWorld, type World } from './world.ts';
import { Rng, inputSeed } from './random.ts';
import { fatalInput, frameInput, preauthInput, sequenceInput } from './generators/frames.ts';
import { httpInput } from './generators/http.ts';
import { handshakeInput, tcpInput } from './generators/raw.ts';

export interface FuzzerOptions {
  url: string;
  seed: number;
  lanes: number;
  settleMs: number;
  timeoutMs: number;
  maxInFlight: number;
  /** Inputs on their own connections running at once per lane (default 8). */
  rawConcurrency?: number;
  memory: MemoryOptions;
  log: (line: string) => void;
}

export const GENERATORS: Record<InputClass, (rng: Rng) => FuzzInput> = {
  frame: frameInput,
  sequence: sequenceInput,
  fatal: fatalInput,
  preauth: preauthInput,
  handshake: handshakeInput,
  http: httpInput,
  tcp: tcpInput,
};

/** Input `index` of the run with seed `seed`: the same bytes on every run (modulo the class weights). */
export function generate(seed: number, index: number, weights: ReadonlyArray<readonly [number, InputClass]>): { input: FuzzInput; inputSeed: number } {
  const s = inputSeed(seed, index);
  const rng = new Rng(s);
  const cls = rng.weighted(weights);
  return { input: GENERATORS[cls](rng), inputSeed: s };
}

export class Fuzzer {
  readonly lanes: Lane[];
  readonly memory: MemoryWatch;
  /** Findings that belong to no input (a session dropped while idle); the batch oracles collect them. */
  private orphans: Finding[] = [];

  private constructor(
    readonly world: World,
    readonly watch: Watch & { silentAcked: Set<string> },
    private readonly options: FuzzerOptions,
  ) {
    this.memory = new MemoryWatch(options.memory);
    this.lanes = Array.from({ length: options.lanes }, (_, index) => ({
      index,
      world,
      watch,
      bindings: bindingsFor(world, index),
      session: new LaneSession({
        world,
        identity: world.workers[index % world.workers.length]!.main,
        watch,
        settleMs: options.settleMs,
        timeoutMs: options.timeoutMs,
        orphan: (f) => this.orphans.push(f),
      }),
      httpPool: [],
      rawSlots: new Slots(options.rawConcurrency ?? 8),
      spare: new Slots(1),
      settleMs: options.settleMs,
      timeoutMs: options.timeoutMs,
      maxInFlight: options.maxInFlight,
      idCounter: 0,
    }));
  }

  /** Sets up the identities and the lanes; throws SetupError when the server cannot be used. */
  static async start(options: FuzzerOptions): Promise<Fuzzer> {
    const world = await setUpWorld({ url: options.url, workers: options.lanes, seed: options.seed, log: options.log });
    const watch = { silentUsers: world.silentUsers, silentAcked: new Set<string>(), seededMessages: new Set(world.seeded.map((m) => m.messageId)), serverWindow: world.limits.window };
    const fuzzer = new Fuzzer(world, watch, options);
    await fuzzer.memory.sample();
    return fuzzer;
  }

  /** Runs one input on a lane; resolves when it has been judged. */
  async run(laneIndex: number, index: number, input: FuzzInput): Promise<InputRun> {
    const run = newRun(index, input);
    const { done } = await execute(this.lanes[laneIndex % this.lanes.length]!, run);
    await done;
    return run;
  }

  /** Starts one input on a lane; resolves once it is sent, with `done` for its judgement. */
  start(laneIndex: number, index: number, input: FuzzInput): Promise<{ run: InputRun; done: Promise<void> }> {
    const run = newRun(index, input);
    return execute(this.lanes[laneIndex % this.lanes.length]!, run).then(({ done }) => ({ run, done }));
  }

  /** Waits until no lane has an input in flight. */
  async quiesce(): Promise<void> {
    await Promise.all(this.lanes.map(async (lane) => {
      await lane.session.idle();
      await lane.rawSlots.idle();
    }));
  }

  /**
   * The batch oracles: health and an end-to-end session, the victim untouched, the passive queues drained (every
   * `janitorEvery` calls), and a memory sample. Returns their findings plus any orphaned ones.
   */
  async check(options: { janitor: boolean; memory: boolean }): Promise<Finding[]> {
    const out = [...this.orphans];
    this.orphans = [];
    const health = await checkHealth(this.world, this.options.timeoutMs);
    out.push(...health);
    // A server that does not answer its health check cannot be judged further.
    if (health.some((f) => f.summary.includes('does not answer'))) return out;
    out.push(...(await checkVictim(this.world, this.watch, this.watch.silentAcked, this.options.timeoutMs)));
    if (options.janitor) out.push(...(await janitor(this.world, this.watch, this.watch.silentAcked, this.options.timeoutMs)));
    if (options.memory) {
      const grew = await this.memory.sample();
      if (grew) out.push(grew);
    }
    return out;
  }

  /** Sessions the lanes had to reopen (each after the server ended one). */
  get reopened(): number {
    return this.lanes.reduce((n, lane) => n + Math.max(0, lane.session.opened - 1), 0);
  }

  async close(): Promise<void> {
    await Promise.all(
      this.lanes.map(async (lane) => {
        for (const conn of lane.httpPool.splice(0)) conn.close();
        await lane.session.close();
      }),
    );
  }
}
