// A campaign: inputs generated from the run seed in batches, spread over `concurrency` lanes, each batch followed by
// the batch oracles; then every distinct failure is reproduced, shrunk and saved to the corpus folder, and a summary
// counts inputs per class, answers per code, and failures.
import { INPUT_CLASSES, type FuzzInput, type InputClass } from './input.ts';
import { Fuzzer, generate } from './fuzzer.ts';
import type { InputRun } from './oracles/answers.ts';
import { findingKey, showFinding, type Finding } from './oracles/finding.ts';
import type { MemoryOptions } from './oracles/memory.ts';
import { startStallWatch, stallReport } from './clock.ts';
import { CORPUS_FORMAT, saveCorpusFile, shrinkInput, shrinkInputs, sizeOf, type CorpusFile, type ShrinkBudget } from './corpus.ts';

export interface CampaignOptions {
  url: string;
  seed: number;
  /** Inputs to send; the campaign also ends at `durationMs`, whichever comes first. */
  iterations: number;
  /** The index of the first input (default 0): re-runs the part of a campaign around an input of interest. */
  firstIndex?: number;
  durationMs: number;
  concurrency: number;
  batchSize: number;
  settleMs: number;
  timeoutMs: number;
  maxInFlight: number;
  weights: Record<InputClass, number>;
  memory: MemoryOptions;
  /** Where failing inputs are saved; none when undefined. */
  corpusDir: string | undefined;
  shrink: ShrinkBudget | undefined;
  /** Restarts the server on a fresh state and returns its new URL (built-in server only): crashes can then be shrunk. */
  restart?: () => Promise<{ url: string; pid?: number }>;
  /** Distinct failures kept and saved at most. */
  maxFailures: number;
  log: (line: string) => void;
  /** Called after every batch with the inputs so far. */
  progress?: (done: number, elapsedMs: number) => void;
}

export interface FailureReport {
  key: string;
  finding: Finding;
  /** Other findings the same input caused. */
  also: Finding[];
  count: number;
  /** The first input that showed it, or the batch it was seen after (batch-level oracles). */
  index: number;
  inputClass: InputClass | 'batch';
  title: string;
  file?: string;
  shrunk?: { from: { steps: number; bytes: number }; to: { steps: number; bytes: number }; trials: number };
  reproduced?: boolean;
}

export interface Summary {
  seed: number;
  url: string;
  inputs: number;
  durationMs: number;
  inputsPerSecond: number;
  perClass: Record<string, number>;
  answers: Record<string, number>;
  batches: number;
  sessionsReopened: number;
  failures: FailureReport[];
  memory: { enabled: boolean; baselineBytes: number; peakBytes: number; samples: number; problem?: string };
  /** Times this process could not run (its deadlines do not count them; see clock.ts). */
  fuzzerStalls: { stalls: number; totalMs: number; longestMs: number };
  /** Why the campaign stopped early, if it did. */
  aborted?: string;
}

interface Pending {
  report: FailureReport;
  /** The failing input, or the batch's inputs for a batch-level failure. */
  inputs: FuzzInput[];
  batch: boolean;
}

export async function runCampaign(options: CampaignOptions): Promise<Summary> {
  const log = options.log;
  startStallWatch();
  const weights = INPUT_CLASSES.filter((c) => options.weights[c] > 0).map((c) => [options.weights[c], c] as const);
  const fuzzer = await Fuzzer.start({ url: options.url, seed: options.seed, lanes: options.concurrency, settleMs: options.settleMs, timeoutMs: options.timeoutMs, maxInFlight: options.maxInFlight, memory: options.memory, log });
  const perClass: Record<string, number> = Object.fromEntries(INPUT_CLASSES.map((c) => [c, 0]));
  const answers: Record<string, number> = {};
  const failures = new Map<string, Pending>();
  const started = performance.now();
  const first = options.firstIndex ?? 0;
  const end = first + options.iterations;
  let sent = first;
  let batches = 0;
  let aborted: string | undefined;

  /** One failure per distinct key; `all` are the findings seen with it (one answer can break several rules). */
  const record = (f: Finding, index: number, inputs: FuzzInput[], batch: boolean, all: Finding[] = [f]) => {
    // The same failure through another class of input is kept apart: it is another way in.
    const key = `${batch ? 'batch' : (inputs[0]?.class ?? '')}|${findingKey(f)}`;
    const known = failures.get(key);
    if (known) {
      known.report.count++;
      return;
    }
    if (failures.size >= options.maxFailures) return;
    const first = inputs[0];
    failures.set(key, {
      report: { key, finding: f, also: all.filter((x) => x !== f), count: 1, index, inputClass: batch ? 'batch' : (first?.class ?? 'batch'), title: batch ? `after batch ${batches}` : (first?.title ?? '') },
      inputs,
      batch,
    });
    log(`FAILURE (seed ${options.seed}, input ${index}${batch ? ', batch oracle' : ''}): ${all.map(showFinding).join('\n')}`);
  };
  const finish = (run: InputRun) => {
    for (const a of run.answers) answers[a] = (answers[a] ?? 0) + 1;
    // An input's findings are one failure, named by the first.
    if (run.findings.length > 0) record(run.findings[0]!, run.index, [run.input], false, run.findings);
  };

  try {
    while (sent < end && performance.now() - started < options.durationMs && !aborted) {
      const batchStart = sent;
      const batchEnd = Math.min(end, batchStart + options.batchSize);
      const batchInputs: FuzzInput[] = [];
      let next = batchStart;
      const judged: Array<Promise<void>> = [];
      await Promise.all(
        fuzzer.lanes.map(async (lane) => {
          while (next < batchEnd && performance.now() - started < options.durationMs) {
            const index = next++;
            const { input } = generate(options.seed, index, weights);
            batchInputs.push(input);
            perClass[input.class] = (perClass[input.class] ?? 0) + 1;
            const { run, done } = await fuzzer.start(lane.index, index, input);
            judged.push(done.then(() => finish(run)));
          }
        }),
      );
      sent = next;
      await Promise.all(judged);
      await fuzzer.quiesce();
      batches++;
      const findings = await fuzzer.check({ janitor: batches % 5 === 0, memory: true });
      for (const f of findings) record(f, batchStart, batchInputs, true);
      if (findings.some((f) => f.oracle === 'health')) aborted = `the server failed its health check after batch ${batches} (inputs ${batchStart}..${sent - 1})`;
      options.progress?.(sent - first, performance.now() - started);
    }
  } catch (error) {
    await fuzzer.close().catch(() => undefined);
    throw error;
  }
  const durationMs = performance.now() - started;
  // Reproduce, shrink and save, after the campaign so that its rate is not disturbed.
  const reports: FailureReport[] = [];
  const target = { url: options.url, down: aborted !== undefined, fuzzer };
  try {
    for (const pending of failures.values()) reports.push(await settleFailure(pending, options, target));
  } finally {
    await target.fuzzer.close().catch(() => undefined);
  }
  return {
    seed: options.seed,
    url: options.url,
    inputs: sent - first,
    durationMs: Math.round(durationMs),
    inputsPerSecond: Math.round(((sent - first) / durationMs) * 1000),
    perClass,
    answers,
    batches,
    sessionsReopened: fuzzer.reopened,
    failures: reports,
    memory: {
      enabled: fuzzer.memory.enabled,
      baselineBytes: fuzzer.memory.baselineBytes,
      peakBytes: fuzzer.memory.peakBytes,
      samples: fuzzer.memory.samples.length,
      ...(fuzzer.memory.problem ? { problem: fuzzer.memory.problem } : {}),
    },
    fuzzerStalls: stallReport(),
    ...(aborted ? { aborted } : {}),
  };
}

const NO_MEMORY: MemoryOptions = { limitBytes: Infinity, warmup: 0, sustain: 1 };

/** Whether running `inputs` on `fuzzer` shows a finding with `key` (the batch oracles too, for a batch failure). */
async function shows(fuzzer: Fuzzer, inputs: FuzzInput[], fullKey: string, batch: boolean): Promise<boolean> {
  const key = fullKey.slice(fullKey.indexOf('|') + 1);
  const found: Finding[] = [];
  for (const input of inputs) found.push(...(await fuzzer.run(0, -1, input)).findings);
  await fuzzer.quiesce();
  if (found.some((f) => findingKey(f) === key)) return true;
  if (!batch) return false;
  found.push(...(await fuzzer.check({ janitor: true, memory: false })));
  return found.some((f) => findingKey(f) === key);
}

/** Reproduces a failure on a fresh server state where possible, shrinks it, and saves it. */
async function settleFailure(pending: Pending, options: CampaignOptions, target: { url: string; down: boolean; fuzzer: Fuzzer }): Promise<FailureReport> {
  const { report } = pending;
  let inputs = pending.inputs;
  let shrunk: FailureReport['shrunk'];
  // An input's own wrong answer replays on the live server and identities; a batch-level failure (a crash, a
  // cross-user effect) needs a fresh server state for every trial, which only the built-in server offers.
  const trial = async (candidate: FuzzInput[]): Promise<boolean> => {
    if (!pending.batch && !target.down) return shows(target.fuzzer, candidate, report.key, false);
    if (!options.restart) return false;
    const url = (await options.restart()).url;
    target.url = url;
    target.down = false;
    await target.fuzzer.close().catch(() => undefined);
    target.fuzzer = await Fuzzer.start({ url, seed: options.seed, lanes: 1, settleMs: options.settleMs, timeoutMs: options.timeoutMs, maxInFlight: options.maxInFlight, memory: NO_MEMORY, log: () => undefined });
    return shows(target.fuzzer, candidate, report.key, true);
  };
  if (options.shrink) {
    try {
      if (await trial(inputs)) {
        report.reproduced = true;
        const from = sizeOf(inputs);
        let trials = 0;
        if (inputs.length > 1 && options.restart) {
          const r = await shrinkInputs(inputs, trial, options.shrink);
          inputs = r.inputs;
          trials += r.trials;
        }
        if (inputs.length === 1) {
          const r = await shrinkInput(inputs[0]!, (candidate) => trial([candidate]), options.shrink);
          inputs = [r.input];
          trials += r.trials;
        }
        shrunk = { from, to: sizeOf(inputs), trials };
        report.shrunk = shrunk;
      } else {
        report.reproduced = false;
      }
    } catch (error) {
      options.log(`shrinking ${report.key} failed: ${(error as Error).message}`);
    }
  }
  if (options.corpusDir) {
    const file: CorpusFile = {
      format: CORPUS_FORMAT,
      title: `${report.finding.subject !== undefined ? `${report.finding.subject}: ` : ''}${report.finding.summary}`,
      seed: options.seed,
      index: report.index,
      findings: [report.finding, ...report.also],
      inputs,
      ...(shrunk ? { shrunk } : {}),
      ...(report.reproduced === false ? { note: 'did not reproduce on its own when replayed; saved as found' } : {}),
    };
    try {
      report.file = saveCorpusFile(options.corpusDir, file);
    } catch (error) {
      // A full disk, or an input too large to write as JSON: the failure is still reported, only not saved.
      options.log(`could not save the input of "${file.title}": ${(error as Error).message}`);
    }
  }
  return report;
}
