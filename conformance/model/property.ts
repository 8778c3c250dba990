// The model-based delivery property: fast-check generates scenarios (a topology of two or three users with one or
// two devices each, then a list of commands from commands.ts); each runs against the server under test with fresh
// users, ends with a final drain, and the checker judges its history. A failing scenario is shrunk for a bounded
// time, and the case fails with the anomalies of the reported scenario, the scenario itself as a script, the
// fast-check seed and path, and the command line that replays it (the property's seed derives from --seed and the
// case id).
import fc from 'fast-check';
import { CaseFailure } from '../case.ts';
import { CaseContext } from '../context.ts';
import { caseSeed } from '../fixtures.ts';
import type { TranscriptLine } from '../transcript.ts';
import { ANOMALY_NAMES, check, formatAnomalies, type Anomaly } from './checker.ts';
import { commandArbitraries, initialModel, topologyArbitrary, type ModelCommand } from './commands.ts';
import { Driver, DRAIN_TIMEOUT_MS, SHRINK_DRAIN_TIMEOUT_MS, USER_LABELS } from './driver.ts';

/** Runs of the property when --model-runs is not given: a few seconds against the reference server. */
export const DEFAULT_MODEL_RUNS = 10;
/** Commands per scenario at most. */
const MAX_COMMANDS = 24;
/** Restarts per scenario at most, where the server can be restarted (each costs a server start). */
const MAX_RESTARTS = 2;
/** Case time budgeted per run (a passing run against the reference server takes a few hundred milliseconds). */
const RUN_BUDGET_MS = 1500;
/** The same for scenarios that restart the server (MAX_RESTARTS starts, about a second or two each). */
const RESTART_RUN_BUDGET_MS = 6000;
/** Time spent shrinking a failure, from the first failing run on; the candidates left after it are not run. */
const SHRINK_BUDGET_MS = 10_000;
/** Case time budgeted beyond the runs and the shrinking (registrations, slow starts). */
const BASE_BUDGET_MS = 5000;
/** The longest a failing run may take: the final drain's full wait and some, plus the restarts. */
const WORST_RUN_MS = DRAIN_TIMEOUT_MS + 3000;
const WORST_RESTART_MS = 4000;
/** Continuation lines of Actual line up under the first in the terminal report (`  Actual:   `). */
const INDENT = ' '.repeat(12);

export interface ModelOptions {
  /** Runs of the property (fast-check numRuns). */
  runs: number;
  /** Include server restarts (crashes) in the scenarios. */
  restarts: boolean;
}

export interface ModelSummary {
  runs: number;
  commands: number;
  /** Server restarts among the commands. */
  restarts: number;
  durationMs: number;
  /** The time limit stopped the property before it finished its runs. */
  interrupted: boolean;
}

/** Thrown by a run whose history shows anomalies. */
export class AnomaliesFound extends Error {
  constructor(readonly anomalies: Anomaly[]) {
    super(`${anomalies.length} anomal${anomalies.length === 1 ? 'y' : 'ies'}: ${anomalies.map((a) => a.name).join(', ')}`);
    this.name = 'AnomaliesFound';
  }
}

/**
 * Case time kept back from fast-check's time limit: the run under way when it hits, and the run that confirms the
 * shrunk scenario.
 */
function reserveMs(options: ModelOptions): number {
  return 2 * (WORST_RUN_MS + (options.restarts ? MAX_RESTARTS * WORST_RESTART_MS : 0));
}

/** The case time the property gets for `runs` runs: an upper bound, which a passing run stays far below. */
export function modelBudgetMs(options: ModelOptions): number {
  return BASE_BUDGET_MS + options.runs * (options.restarts ? RESTART_RUN_BUDGET_MS : RUN_BUDGET_MS) + SHRINK_BUDGET_MS + reserveMs(options);
}

interface FailedRun {
  error: unknown;
  topology: number[];
  commands: ModelCommand[];
  script: string[];
  transcript: TranscriptLine[];
  /** Case time (of the outer case) at which the run started. */
  startedAt: number;
}

interface Tally {
  runs: number;
  commands: number;
  restarts: number;
}

function describeTopology(topology: readonly number[]): string {
  return topology.map((devices, u) => `${USER_LABELS[u]} (${Array.from({ length: devices }, (_, d) => `${USER_LABELS[u]}${d + 1}`).join(', ')})`).join(', ');
}

/**
 * One scenario against the server: fresh users in a context of its own (its transcript is the run's), the commands,
 * the final drain, the checker. Resolves with the failure, if any.
 */
async function runScenario(ctx: CaseContext, options: ModelOptions, topology: number[], commands: ModelCommand[], drainTimeoutMs: number, tally: Tally): Promise<FailedRun | undefined> {
  tally.runs++;
  const run = new CaseContext(ctx.env, ctx.caseId, ctx.remaining());
  const startedAt = ctx.transcript.now();
  const waitedBefore = ctx.env.rateLimitWaitMs;
  let driver: Driver | undefined;
  let failure: { error: unknown } | undefined;
  try {
    driver = await Driver.create(run, topology, (ms) => ctx.extend(ms));
    const real = driver;
    await driver.start();
    await fc.asyncModelRun(() => ({ model: initialModel(topology, options.restarts ? MAX_RESTARTS : 0), real }), commands);
    await driver.drain(drainTimeoutMs);
    const anomalies = check(driver.recorder);
    if (anomalies.length > 0) failure = { error: new AnomaliesFound(anomalies) };
  } catch (error) {
    failure = { error };
  }
  tally.commands += driver?.steps ?? 0;
  tally.restarts += driver?.script.filter((line) => line.startsWith('restart')).length ?? 0;
  await run.cleanup(); // closes the sessions, which merges their frames into the run's transcript
  ctx.extend(ctx.env.rateLimitWaitMs - waitedBefore);
  if (!failure) return undefined;
  return { error: failure.error, topology, commands, script: driver?.script ?? [], transcript: run.transcript.sorted(), startedAt };
}

/** Runs the property in `ctx`; throws a CaseFailure describing the failing scenario when it fails. */
export async function runModel(ctx: CaseContext, options: ModelOptions): Promise<ModelSummary> {
  if (!Number.isSafeInteger(options.runs) || options.runs < 1) throw new RangeError(`model runs must be a positive integer (got ${options.runs})`);
  ctx.extend(Math.max(0, modelBudgetMs(options) - ctx.remaining()));
  const seed = caseSeed(ctx.env.seed, ctx.caseId) | 0;
  const started = performance.now();
  const tally: Tally = { runs: 0, commands: 0, restarts: 0 };
  /** The first failing run (its drain had the full DRAIN_TIMEOUT_MS), and the last (the shrunk scenario). */
  let first: FailedRun | undefined;
  let last: FailedRun | undefined;
  let shrinkUntil = Infinity;
  let shrinkCut = false;

  // An array of commands rather than fc.commands: the shrinker of fc.commands always keeps the last commands of a
  // failing run (it expects the failure at the last command run), but this property judges the whole history at the
  // end, so a trailing command that plays no part in a failure could never be shrunk away. fc.asyncModelRun still
  // runs them, skipping each whose precondition does not hold.
  const scenario = fc.array(fc.oneof(...commandArbitraries(options)), { maxLength: MAX_COMMANDS, size: 'max' });
  const property = fc.asyncProperty(topologyArbitrary, scenario, async (topology, commands) => {
    // Once the shrinking time is over, the remaining candidates count as passing without a run, so that fast-check
    // settles on the smallest failure found so far.
    if (performance.now() > shrinkUntil) {
      shrinkCut = true;
      return;
    }
    // While shrinking, drains wait less: a candidate that fails only for want of patience is confirmed below.
    const failed = await runScenario(ctx, options, topology, commands, first ? SHRINK_DRAIN_TIMEOUT_MS : DRAIN_TIMEOUT_MS, tally);
    if (!failed) return;
    if (!first) {
      first = failed;
      shrinkUntil = performance.now() + SHRINK_BUDGET_MS;
    }
    last = failed;
    throw failed.error;
  });

  const details = await fc.check(property, { seed, numRuns: options.runs, interruptAfterTimeLimit: Math.max(1000, ctx.remaining() - reserveMs(options)), markInterruptAsFailure: false });
  let form = details.numShrinks > 0 ? 'shrunk' : 'as generated';
  if (details.failed && first && last && last !== first) {
    // The shrunk scenario failed with the shorter drain; it stands only if it fails again with the full one (a
    // failure that depends on timing may also just not happen again).
    const again = await runScenario(ctx, options, last.topology, last.commands, DRAIN_TIMEOUT_MS, tally);
    if (!again) form = 'as generated: its shrunk form did not fail again when run with the full drain time';
    last = again ?? first;
  }
  const summary = { ...tally, durationMs: Math.round(performance.now() - started), interrupted: details.interrupted };
  ctx.note(`model: ${tally.runs} runs, ${tally.commands} commands (${tally.restarts} restarts) in ${summary.durationMs} ms (fast-check seed ${seed}${details.interrupted ? ', stopped by the time limit' : ''})`);
  if (!details.failed) return summary;
  if (!last) throw details.errorInstance;
  const shown: FailedRun = last;

  // The transcript of the reported scenario, in the outer case's time.
  for (const line of shown.transcript) ctx.transcript.add(line.channel, line.direction, line.data, Math.round((shown.startedAt + line.at) * 10) / 10);
  const script = [
    `scenario (${form}; fast-check seed ${details.seed}, path "${details.counterexamplePath ?? ''}", failed at run ${details.numRuns} of ${options.runs}, ${details.numShrinks} shrinks${shrinkCut || details.interrupted ? ', shrinking stopped by its time limit' : ''}):`,
    `  users ${describeTopology(shown.topology)}`,
    ...shown.script.map((line, i) => `  ${String(i + 1).padStart(2)}. ${line}`),
    `replay: tickwire conformance --seed ${ctx.env.seed} --model-runs ${options.runs} --grep '^${ctx.caseId}$' (with the same --url and restart options)`,
  ];
  ctx.note(`model: the reported scenario\n${script.join('\n')}`);
  const block = (lines: string[]) => lines.join(`\n${INDENT}`);
  const error = shown.error;
  if (error instanceof AnomaliesFound) {
    const head = error.anomalies[0]!;
    const actual = block([`${error.anomalies.length} anomal${error.anomalies.length === 1 ? 'y' : 'ies'}:`, ...formatAnomalies(error.anomalies).map((l) => `  ${l}`), ...script]);
    throw new CaseFailure(head.requirements[0]!, `a delivery history without anomalies (${ANOMALY_NAMES.join(', ')})`, actual, 'model-based delivery history');
  }
  if (error instanceof CaseFailure) {
    // A check of a step failed (`what: [ID] expected …`): keep its `what`, then the scenario.
    const cut = error.message.indexOf(': [');
    const what = cut > 0 ? ` (${error.message.slice(0, cut)})` : '';
    throw new CaseFailure(error.requirementId, error.expected, block([`${error.actual}${what}`, ...script]), 'model-based delivery history');
  }
  throw error; // not the server's fault as far as the suite can tell (a network error, a suite bug): as it is
}
