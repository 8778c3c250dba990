// The conformance suite catches bugs: every deliberately broken variant of the reference server (reference-server/
// mutants.ts, `tickwire serve --test-mutant NAME`) fails the cases that check what it breaks, citing the requirement
// IDs the registry lists. Each mutant runs only the cases relevant to it, against its own server process (restarted
// by SIGKILL in the durability cases), a few mutants at a time. The other half of the claim, that the real reference
// server passes every case with --strict, is suite.test.ts.
import t from 'tap';
import { cases } from '../../conformance/cases/index.ts';
import type { ConformanceCase } from '../../conformance/case.ts';
import { run, type RunReport } from '../../conformance/runner.ts';
import { ReferenceServer } from '../../conformance/server-process.ts';
import { MUTANTS, type Mutant, type MutantName } from '../../reference-server/mutants.ts';

/** The model-based delivery case, when the suite has it: selected for the delivery mutants, never relied upon. */
const MODEL_CASE = '4.5/model-delivery-history';
const DELIVERY = [MODEL_CASE];
/** Scenarios the model case runs per mutant (fewer than its default: the other cases selected catch every mutant). */
const MODEL_RUNS = 2;

/**
 * The cases each mutant runs: those that check what it breaks, and no more, to keep the run short. Typed by the
 * registry, so a mutant without an entry here does not compile (and the name check below fails too).
 */
const CASES: Record<MutantName, readonly string[]> = {
  'ack-before-durable': ['4.14/accepted-items-survive-restart'],
  'drop-queue-on-disconnect': ['4.7/new-session-redelivers-unacknowledged', '4.6/ack-seqs-acknowledges-exactly', ...DELIVERY],
  'deliver-out-of-order': ['4.5/offline-backlog-drains-in-order', '4.10/fifo-per-sender-across-devices', '4.5/window-honoured', ...DELIVERY],
  'delete-before-ack': ['4.7/new-session-redelivers-unacknowledged', '4.6/ack-seqs-acknowledges-exactly', ...DELIVERY],
  'prekey-handed-out-twice': ['3.3/one-time-prekey-handed-out-once'],
  'skip-queue-empty': ['4.8/queue-empty-first-when-backlog-empty', ...DELIVERY],
  'accept-frame-for-other-device': ['2.8/frames-act-for-the-authenticated-device'],
  'forget-offline-receipts': ['4.13/delivered-receipt-to-offline-sender', '4.13/read-receipt-to-offline-sender'],
  'ignore-window': ['4.5/window-honoured', ...DELIVERY],
  'no-redelivery': ['4.7/redelivery-after-ack-timeout', ...DELIVERY],
  'duplicate-enqueued': ['4.3/duplicate-send'],
  'delivered-receipt-not-durable': ['4.13/delivered-receipt-survives-crash'],
};

/** Mutants run at once (each is a server process plus its cases; the machine may have only two busy cores). */
const PARALLEL_MUTANTS = 4;
/** Cases at once within one mutant's run. */
const CASE_CONCURRENCY = 4;
/**
 * Per-case time limit. A case that catches a mutant often does so by waiting in vain (for a redelivery, a lost
 * message, a queue_empty), so the limit is the run's duration; it leaves the redelivery cases their ackTimeoutMs
 * (1000 ms on the built-in server) plus the 1500 ms they allow.
 */
const CASE_TIMEOUT_MS = 5000;
/**
 * Mutants whose cases restart the server get longer: starting a server process again takes seconds on a busy machine,
 * and the case clock runs during the restart until it is over (CaseContext.restartServer extends it only afterwards).
 */
const RESTART_CASE_TIMEOUT_MS = 10_000;
const SEED = 20260527;

interface MutantRun {
  report: RunReport;
  /** What the server wrote to stderr as it started, which must carry the mutant warning. */
  startupStderr: string;
}

function selectionOf(mutant: Mutant): ConformanceCase[] {
  const ids = new Set(CASES[mutant.name as MutantName]);
  return cases.filter((c) => ids.has(c.id));
}

function timeoutOf(selected: readonly ConformanceCase[]): number {
  return selected.some((c) => c.needs?.some((need) => need === 'restart' || need === 'graceful-restart')) ? RESTART_CASE_TIMEOUT_MS : CASE_TIMEOUT_MS;
}

async function runMutant(mutant: Mutant): Promise<MutantRun> {
  const server = await ReferenceServer.start(['--test-mutant', mutant.name]);
  try {
    const startupStderr = server.logTail;
    const selected = selectionOf(mutant);
    const report = await run(selected, { url: server.url, concurrency: CASE_CONCURRENCY, timeoutMs: timeoutOf(selected), strict: true, seed: SEED, modelRuns: MODEL_RUNS, restarter: server });
    return { report, startupStderr };
  } finally {
    await server.stop();
  }
}

/**
 * Starts every run through a pool of PARALLEL_MUTANTS lanes, the longest first (those restarting the server, then
 * those running more cases); each promise settles with its mutant's run.
 */
function runAll(mutants: readonly Mutant[]): Map<string, Promise<MutantRun>> {
  const settlers = new Map<string, { resolve: (r: MutantRun) => void; reject: (e: unknown) => void }>();
  const runs = new Map<string, Promise<MutantRun>>();
  for (const mutant of mutants) {
    const promise = new Promise<MutantRun>((resolve, reject) => settlers.set(mutant.name, { resolve, reject }));
    promise.catch(() => undefined); // reported by its own test
    runs.set(mutant.name, promise);
  }
  const cost = (mutant: Mutant) => timeoutOf(selectionOf(mutant)) * 100 + selectionOf(mutant).length;
  const queue = [...mutants].sort((a, b) => cost(b) - cost(a));
  const lane = async () => {
    for (let mutant = queue.shift(); mutant !== undefined; mutant = queue.shift()) {
      const settle = settlers.get(mutant.name)!;
      await runMutant(mutant).then(settle.resolve, settle.reject);
    }
  };
  for (let i = 0; i < Math.min(PARALLEL_MUTANTS, queue.length); i++) void lane();
  return runs;
}

t.test('the registry and this test name the same mutants', async (t) => {
  t.same([...Object.keys(CASES)].sort(), MUTANTS.map((m) => m.name).sort(), 'every mutant has an expectation here, and nothing else does');
  t.ok(MUTANTS.length >= 10, 'at least the ten mutants of the issue');
  for (const mutant of MUTANTS) {
    t.match(mutant.name, /^[a-z0-9]+(?:-[a-z0-9]+)*$/, `${mutant.name} is kebab-case`);
    t.ok(mutant.violates.length > 0, `${mutant.name} lists the requirements it violates`);
    for (const id of CASES[mutant.name]) {
      if (id !== MODEL_CASE) t.ok(cases.some((c) => c.id === id), `${mutant.name}: case ${id} exists`);
    }
    const cited = new Set(selectionOf(mutant).flatMap((c) => c.requirements));
    t.ok(mutant.violates.every((id) => cited.has(id)), `${mutant.name}: its selected cases cite ${mutant.violates.join(', ')}`);
  }
});

const runs = runAll(MUTANTS);

for (const mutant of MUTANTS) {
  t.test(`mutant ${mutant.name} fails the suite with ${mutant.violates.join(', ')}`, async (t) => {
    const { report, startupStderr } = await runs.get(mutant.name)!;
    const failed = report.results.filter((r) => r.verdict === 'FAILED');
    const cited = [...new Set(failed.map((r) => r.failure!.requirementId))];
    const describe = report.results.map((r) => `${r.verdict} ${r.id}${r.failure ? ` [${r.failure.requirementId}] ${r.failure.message}` : r.reason ? ` (${r.reason})` : ''}`).join('\n');
    t.comment(`${mutant.name}: ${report.durationMs} ms for ${report.results.map((r) => `${r.id} ${r.verdict} ${r.durationMs} ms`).join(', ')}`);
    t.match(startupStderr, `WARNING: TEST MUTANT '${mutant.name}' IS ON`, 'the server warns that the mutant is on');
    t.equal(report.aborted, undefined, 'the run was not aborted');
    t.equal(report.exitCode, 1, `the run fails:\n${describe}`);
    for (const id of mutant.violates) t.ok(cited.includes(id), `a failed case cites ${id} (cited: ${cited.join(', ') || 'none'}):\n${describe}`);
  });
}
