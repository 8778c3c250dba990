// Runs conformance cases against one server: selection, a bounded pool of concurrent cases, a per-case timeout,
// verdicts, and the run's exit code. Cases needing a restart run alone after all others. A server that stops
// answering ends the run (exit 2) instead of letting every remaining case time out.
import { CaseFailure, CaseNotRun, CaseUnsupported, sectionOf, ServerUnreachable, type ConformanceCase, type Level, type Verdict } from './case.ts';
import { canMeet, CaseContext, unmetReason, type Faulter, type Restarter, type SuiteEnv } from './context.ts';
import { coverageOf, type Coverage } from './coverage.ts';
import type { TranscriptLine } from './transcript.ts';

export interface Selection {
  /** Regular expressions (case-insensitive) matched against the id and the title; a case must match one. */
  grep?: string[];
  /** Section prefixes: `4` selects 4.x, `4.6` selects 4.6 and 4.6.x. */
  section?: string[];
  /** Requirement IDs; a case must cite one. */
  requirement?: string[];
  /** Regular expressions; a case matching any is left out. */
  exclude?: string[];
}

export interface RunOptions {
  url: string;
  /** Several URLs of one service (`url` first): each case spreads its connections and HTTP requests over them. */
  urls?: readonly string[];
  concurrency: number;
  timeoutMs: number;
  strict: boolean;
  seed: number;
  /** Runs of the model-based delivery property (`--model-runs`); default DEFAULT_MODEL_RUNS. */
  modelRuns?: number;
  restarter?: Restarter;
  faulter?: Faulter;
  /** Called after each case, for progress output. */
  onResult?: (result: CaseResult, done: number, total: number) => void;
}

export interface FailureInfo {
  requirementId: string;
  requirementText: string;
  expected: string;
  actual: string;
  message: string;
}

export interface CaseResult {
  id: string;
  section: string;
  title: string;
  level: Level;
  requirements: string[];
  verdict: Verdict;
  /** Why the case was UNSUPPORTED or NOT-RUN. */
  reason?: string;
  failure?: FailureInfo;
  durationMs: number;
  /** The transcript, kept for cases that did not pass. */
  transcript?: TranscriptLine[];
}

export interface RunReport {
  tool: 'tickwire-conformance';
  /** Version of this report's shape (see conformance/README.md); bumped on incompatible change. */
  formatVersion: 1;
  url: string;
  /** Every URL of the service, `url` first; only when there were several. */
  urls?: string[];
  startedAt: string;
  durationMs: number;
  options: { strict: boolean; concurrency: number; timeoutMs: number; seed: number; restart: boolean; storageFault: boolean };
  summary: Record<Verdict, number> & { total: number; mustFailed: number; shouldFailed: number };
  /** Set when the run stopped early, with the reason (the server became unreachable). */
  aborted?: string;
  results: CaseResult[];
  coverage: Coverage;
  exitCode: 0 | 1 | 2;
}

function compile(patterns: string[] | undefined): RegExp[] {
  return (patterns ?? []).map((p) => {
    try {
      return new RegExp(p, 'i');
    } catch {
      return new RegExp(p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i');
    }
  });
}

/** The cases a selection picks, in suite order. */
export function select(cases: readonly ConformanceCase[], selection: Selection): ConformanceCase[] {
  const grep = compile(selection.grep);
  const exclude = compile(selection.exclude);
  return cases.filter((c) => {
    const matches = (r: RegExp) => r.test(c.id) || r.test(c.title);
    if (grep.length > 0 && !grep.some(matches)) return false;
    if (exclude.some(matches)) return false;
    if (selection.section?.length) {
      const section = sectionOf(c.id);
      if (!selection.section.some((s) => section === s || section.startsWith(`${s}.`))) return false;
    }
    if (selection.requirement?.length && !c.requirements.some((id) => selection.requirement!.includes(id))) return false;
    return true;
  });
}

/** True when the server answers HTTP at all (any status): a quick probe for a dead server. */
export async function reachable(url: string, timeoutMs = 3000): Promise<boolean> {
  try {
    const response = await fetch(new URL('/healthz', url), { signal: AbortSignal.timeout(timeoutMs) });
    await response.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

/** The first of `urls` that does not answer HTTP, or undefined when every one does. */
async function unreachable(urls: readonly string[]): Promise<string | undefined> {
  const answers = await Promise.all(urls.map((url) => reachable(url)));
  return urls[answers.indexOf(false)];
}

function isNetworkError(error: unknown): boolean {
  const err = error as { code?: unknown; cause?: { code?: unknown }; message?: unknown };
  const codes = ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'HANDSHAKE', 'UND_ERR_SOCKET', 'ENOTFOUND'];
  return codes.includes(String(err?.code)) || codes.includes(String(err?.cause?.code)) || /fetch failed/.test(String(err?.message));
}

async function runOne(c: ConformanceCase, env: SuiteEnv, options: RunOptions): Promise<CaseResult> {
  const base = { id: c.id, section: sectionOf(c.id), title: c.title, level: c.level, requirements: c.requirements };
  const started = performance.now();
  for (const need of c.needs ?? []) {
    if (!canMeet(env, need)) return { ...base, verdict: 'NOT-RUN', reason: unmetReason(need), durationMs: 0 };
  }
  const ctx = new CaseContext(env, c.id, options.timeoutMs, c.budgetMs?.bind(c));
  let outcome: { kind: 'ok' } | { kind: 'error'; error: unknown } | { kind: 'timeout' };
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<{ kind: 'timeout' }>((resolve) => {
    const tick = () => {
      const left = ctx.deadlineAt - performance.now();
      if (left <= 0) resolve({ kind: 'timeout' });
      else timer = setTimeout(tick, Math.min(left + 5, 1000));
    };
    tick();
  });
  try {
    outcome = await Promise.race([
      c.run(ctx).then(
        () => {
          ctx.transcript.throwIfViolated();
          return { kind: 'ok' as const };
        },
        (error: unknown) => ({ kind: 'error' as const, error }),
      ),
      timedOut,
    ]);
  } finally {
    clearTimeout(timer);
  }
  await ctx.cleanup();
  const durationMs = Math.round(performance.now() - started);
  const failedVerdict: Verdict = c.level === 'should' && !options.strict ? 'NON-STRICT' : 'FAILED';
  const withTranscript = { durationMs, transcript: ctx.transcript.sorted() };
  if (outcome.kind === 'ok') return { ...base, verdict: 'OK', durationMs };
  if (outcome.kind === 'timeout') {
    const primary = c.requirements[0]!;
    const failure = new CaseFailure(primary, `the case to finish within ${Math.round(ctx.deadlineAt - started)} ms`, 'it timed out', c.id);
    return { ...base, verdict: failedVerdict, failure: failureInfo(failure), ...withTranscript };
  }
  const error = outcome.error;
  if (error instanceof CaseUnsupported) return { ...base, verdict: 'UNSUPPORTED', reason: error.reason, durationMs };
  if (error instanceof CaseNotRun) return { ...base, verdict: 'NOT-RUN', reason: error.reason, durationMs };
  if (error instanceof CaseFailure) return { ...base, verdict: failedVerdict, failure: failureInfo(error), ...withTranscript };
  if (isNetworkError(error)) {
    const dead = await unreachable(env.urls ?? [env.url]);
    if (dead !== undefined) throw new ServerUnreachable(`server at ${dead} stopped answering during ${c.id}: ${(error as Error).message}`);
  }
  // Anything else is an unexpected error of the case against this server: a failure citing the case's first requirement.
  const primary = c.requirements[0]!;
  const failure = new CaseFailure(primary, 'the case to run to completion', `${(error as Error).name}: ${(error as Error).message}`, c.id);
  return { ...base, verdict: failedVerdict, failure: failureInfo(failure), ...withTranscript };
}

function failureInfo(f: CaseFailure): FailureInfo {
  return { requirementId: f.requirementId, requirementText: f.requirementText, expected: f.expected, actual: f.actual, message: f.message };
}

/** Runs `cases` and builds the report. Never throws for a failing server; only for a bug of the suite itself. */
export async function run(cases: readonly ConformanceCase[], options: RunOptions): Promise<RunReport> {
  const startedAt = new Date();
  const t0 = performance.now();
  const urls = options.urls && options.urls.length > 1 ? [...options.urls] : undefined;
  if (urls && urls[0] !== options.url) throw new RangeError(`urls must start with url (${options.url})`);
  const env: SuiteEnv = { url: options.url, ...(urls ? { urls } : {}), seed: options.seed, rateLimitWaitMs: 0, ...(options.modelRuns ? { modelRuns: options.modelRuns } : {}), ...(options.restarter ? { restarter: options.restarter } : {}), ...(options.faulter ? { faulter: options.faulter } : {}) };
  const results = new Map<string, CaseResult>();
  let aborted: string | undefined;
  let done = 0;
  const record = (result: CaseResult) => {
    results.set(result.id, result);
    options.onResult?.(result, ++done, cases.length);
  };
  const dead = await unreachable(urls ?? [options.url]);
  if (dead !== undefined) aborted = `server at ${dead} is unreachable`;

  // A case that restarts the server or breaks its storage would disturb every case running beside it, so those run
  // alone, at the end. (One whose needs cannot be met is NOT-RUN at once and may as well go with the others.)
  const disturbs = (c: ConformanceCase) => (c.needs ?? []).length > 0 && (c.needs ?? []).every((need) => canMeet(env, need));
  // Cases with a long time budget of their own (budgetMs) start first, so that they overlap with the others.
  const parallel = [...cases.filter((c) => !disturbs(c) && c.budgetMs), ...cases.filter((c) => !disturbs(c) && !c.budgetMs)];
  const exclusive = cases.filter(disturbs);
  const lane = async (queue: ConformanceCase[]) => {
    for (let c = queue.shift(); c !== undefined; c = queue.shift()) {
      if (aborted) return;
      try {
        record(await runOne(c, env, options));
      } catch (error) {
        if (!(error instanceof ServerUnreachable)) throw error;
        aborted = error.message;
      }
    }
  };
  const queue = [...parallel];
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, queue.length)) }, () => lane(queue)));
  await lane([...exclusive]);
  for (const c of cases) {
    if (!results.has(c.id)) {
      results.set(c.id, { id: c.id, section: sectionOf(c.id), title: c.title, level: c.level, requirements: c.requirements, verdict: 'NOT-RUN', reason: aborted ?? 'not reached', durationMs: 0 });
    }
  }
  const ordered = cases.map((c) => results.get(c.id)!);
  const summary = { OK: 0, FAILED: 0, 'NON-STRICT': 0, UNSUPPORTED: 0, 'NOT-RUN': 0, total: ordered.length, mustFailed: 0, shouldFailed: 0 };
  for (const r of ordered) {
    summary[r.verdict]++;
    if (r.verdict === 'FAILED' || r.verdict === 'NON-STRICT') r.level === 'must' ? summary.mustFailed++ : summary.shouldFailed++;
  }
  const exitCode: 0 | 1 | 2 = aborted ? 2 : summary.FAILED > 0 ? 1 : 0;
  return {
    tool: 'tickwire-conformance',
    formatVersion: 1,
    url: options.url,
    ...(urls ? { urls } : {}),
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(performance.now() - t0),
    options: { strict: options.strict, concurrency: options.concurrency, timeoutMs: options.timeoutMs, seed: options.seed, restart: Boolean(options.restarter), storageFault: Boolean(options.faulter) },
    summary,
    ...(aborted ? { aborted } : {}),
    results: ordered,
    coverage: coverageOf(ordered),
    exitCode,
  };
}
