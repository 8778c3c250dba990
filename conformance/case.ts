// A conformance case as data (STYLE.md, after summerwind/h2spec and crossbario/autobahn-testsuite): an ID derived
// from the spec section it checks, the requirement IDs it cites, a level, a title and a `run` function. The verdict
// vocabulary and the three signals a case can raise (failure, unsupported, not run) live here too.
import { requirement, type Limits, type RequirementEntry } from '../spec/index.ts';
import type { CaseContext } from './context.ts';

/**
 * `must`: the case decides the exit code. `should`: it checks a SHOULD-level requirement; its failure is reported as
 * NON-STRICT and fails the run only with `--strict`.
 */
export type Level = 'must' | 'should';

/**
 * Capabilities a case needs beyond a running server. `restart`: the suite can crash and restart the server under test
 * (the built-in reference server, killed with SIGKILL, or `--restart-cmd`). `graceful-restart`: it can make the server
 * shut down deliberately and start again (the built-in server, sent SIGTERM, or `--graceful-restart-cmd`).
 * `storage-fault`: it can make the server's storage fail and then heal it (the built-in server, whose file size limit
 * is cut to 1 byte with prlimit(1) so that every write fails with EFBIG, or `--fault-cmd` and `--heal-cmd`). Such cases
 * run alone, after every other case.
 */
export type Need = 'restart' | 'graceful-restart' | 'storage-fault';

export interface ConformanceCase {
  /** `<section>/<slug>`, e.g. `4.6/ack-upto-acknowledges-delivered`: the section of PROTOCOL.md it checks. */
  id: string;
  /** Requirement IDs of spec/requirements.json that the case checks; every one must exist there. */
  requirements: string[];
  level: Level;
  /** One line: what a conforming server does. */
  title: string;
  needs?: Need[];
  /**
   * The time the case needs when a timer it waits for is longer than the per-case timeout (`--timeout`), computed from
   * the limits the server advertises, e.g. `(limits) => limits.idleTimeoutMs + 10_000`. Once the case's first `welcome`
   * shows the limits, its deadline becomes at least this many milliseconds after it started; a budget over
   * MAX_CASE_BUDGET_MS (or `--timeout`, if that is larger) makes the case UNSUPPORTED. The runner starts such cases
   * before the others, so that they overlap with the rest of the run.
   */
  budgetMs?(limits: Limits): number;
  run(ctx: CaseContext): Promise<void>;
}

/** The longest time budget a case may claim with `budgetMs` (three minutes: an idle timeout at its reference default fits). */
export const MAX_CASE_BUDGET_MS = 180_000;

/**
 * - OK: every check passed.
 * - FAILED: a check failed (a must case, or a should case under `--strict`), or the case timed out.
 * - NON-STRICT: a should case failed without `--strict`; reported, but the run still passes.
 * - UNSUPPORTED: the case needs something the server does not advertise (for example an `ackTimeoutMs` longer
 *   than the case budget); not a failure.
 * - NOT-RUN: the suite cannot run the case here (it needs `--restart-cmd`, or the server became unreachable).
 */
export type Verdict = 'OK' | 'FAILED' | 'NON-STRICT' | 'UNSUPPORTED' | 'NOT-RUN';
export const VERDICTS: readonly Verdict[] = ['OK', 'FAILED', 'NON-STRICT', 'UNSUPPORTED', 'NOT-RUN'];

const CASE_ID = /^(\d+(?:\.\d+)*)\/[a-z0-9]+(?:-[a-z0-9]+)*$/;

/** The spec section of a case ID: `4.6/ack-upto…` → `4.6`. */
export function sectionOf(caseId: string): string {
  const match = CASE_ID.exec(caseId);
  if (!match) throw new RangeError(`case id '${caseId}' is not <section>/<kebab-slug>`);
  return match[1]!;
}

/** The chapter (top-level section) of a case ID: `4.6/…` → `4`. */
export function chapterOf(caseId: string): string {
  return sectionOf(caseId).split('.')[0]!;
}

/** The index entry of a requirement ID; throws for an ID the spec does not have. */
export function requirementEntry(id: string): RequirementEntry {
  const entry = requirement(id);
  if (!entry) throw new RangeError(`requirement ${id} is not in spec/requirements.json`);
  return entry;
}

/** Checks the shape of a list of cases; throws RangeError naming every problem. Used when the suite is loaded. */
export function checkCases(cases: readonly ConformanceCase[]): void {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const c of cases) {
    if (!CASE_ID.test(c.id)) problems.push(`${c.id}: id is not <section>/<kebab-slug>`);
    if (seen.has(c.id)) problems.push(`${c.id}: duplicate id`);
    seen.add(c.id);
    if (c.requirements.length === 0) problems.push(`${c.id}: cites no requirement`);
    for (const id of c.requirements) if (!requirement(id)) problems.push(`${c.id}: cites unknown requirement ${id}`);
  }
  if (problems.length > 0) throw new RangeError(`invalid conformance cases:\n  ${problems.join('\n  ')}`);
}

/** Renders a value for Expected/Actual lines: strings as they are, everything else as compact JSON. */
export function show(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return '(nothing)';
  const text = JSON.stringify(value);
  return text.length > 600 ? `${text.slice(0, 600)}… (${text.length} characters)` : text;
}

/** A check failed: carries the requirement it enforces, its sentence from the index, Expected and Actual. */
export class CaseFailure extends Error {
  readonly code = 'CASE_FAILED';
  readonly requirementId: string;
  readonly requirementText: string;
  readonly expected: string;
  readonly actual: string;
  constructor(requirementId: string, expected: string, actual: string, what?: string) {
    const entry = requirement(requirementId);
    super(`${what ? `${what}: ` : ''}[${requirementId}] expected ${expected}, got ${actual}`);
    this.name = 'CaseFailure';
    this.requirementId = requirementId;
    this.requirementText = entry?.text ?? '(requirement not in the index)';
    this.expected = expected;
    this.actual = actual;
  }
}

/** The server does not offer what the case needs; the verdict is UNSUPPORTED with this reason. */
export class CaseUnsupported extends Error {
  readonly code = 'CASE_UNSUPPORTED';
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'CaseUnsupported';
  }
}

/** The suite cannot run the case in this environment; the verdict is NOT-RUN with this reason. */
export class CaseNotRun extends Error {
  readonly code = 'CASE_NOT_RUN';
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'CaseNotRun';
  }
}

/** The suite itself could not proceed (the server under test vanished); the run ends with exit code 2. */
export class ServerUnreachable extends Error {
  readonly code = 'SERVER_UNREACHABLE';
  constructor(message: string) {
    super(message);
    this.name = 'ServerUnreachable';
  }
}
