// The coverage table: every requirement that binds a server, the cases citing it and how they fared, and the
// requirements no selected case cites. Client-only requirements are out of scope for a server suite; `internal`
// ones cannot be observed from outside (PROTOCOL.md 0.4) and are listed as such.
import { requirements } from '../spec/index.ts';
import type { Verdict } from './case.ts';

/**
 * - `passed`: cited by at least one case, and every citing case that ran is OK.
 * - `failed`: some citing case FAILED or was NON-STRICT.
 * - `not-checked`: cited, but no citing case ran to a verdict (UNSUPPORTED or NOT-RUN).
 * - `uncovered`: observable but cited by no case of this run.
 * - `internal`: not observable from outside the server.
 */
export type CoverageStatus = 'passed' | 'failed' | 'not-checked' | 'uncovered' | 'internal';

export interface CoverageRow {
  id: string;
  level: string;
  section: string;
  text: string;
  status: CoverageStatus;
  cases: Array<{ id: string; verdict: Verdict }>;
}

export interface Coverage {
  rows: CoverageRow[];
  /** IDs of observable server requirements cited by no case of the run. */
  uncovered: string[];
  counts: Record<CoverageStatus, number>;
}

export interface CitingResult {
  id: string;
  requirements: string[];
  verdict: Verdict;
}

export function coverageOf(results: readonly CitingResult[]): Coverage {
  const byRequirement = new Map<string, Array<{ id: string; verdict: Verdict }>>();
  for (const r of results) {
    for (const id of r.requirements) {
      let list = byRequirement.get(id);
      if (!list) byRequirement.set(id, (list = []));
      list.push({ id: r.id, verdict: r.verdict });
    }
  }
  const rows: CoverageRow[] = [];
  for (const req of requirements) {
    if (!req.parties.includes('server')) continue;
    const cases = byRequirement.get(req.id) ?? [];
    let status: CoverageStatus;
    if (!req.observable) status = 'internal';
    else if (cases.length === 0) status = 'uncovered';
    else if (cases.some((c) => c.verdict === 'FAILED' || c.verdict === 'NON-STRICT')) status = 'failed';
    else if (cases.some((c) => c.verdict === 'OK')) status = 'passed';
    else status = 'not-checked';
    rows.push({ id: req.id, level: req.level, section: req.section, text: req.text, status, cases });
  }
  const counts: Record<CoverageStatus, number> = { passed: 0, failed: 0, 'not-checked': 0, uncovered: 0, internal: 0 };
  for (const row of rows) counts[row.status]++;
  return { rows, uncovered: rows.filter((r) => r.status === 'uncovered').map((r) => r.id), counts };
}

/** Coverage per spec chapter and section heading: how many server requirements, how many cited, how many passed. */
export function coverageBySection(coverage: Coverage): Array<{ section: string; total: number; cited: number; passed: number; failed: number }> {
  const out = new Map<string, { section: string; total: number; cited: number; passed: number; failed: number }>();
  for (const row of coverage.rows) {
    if (row.status === 'internal') continue;
    let entry = out.get(row.section);
    if (!entry) out.set(row.section, (entry = { section: row.section, total: 0, cited: 0, passed: 0, failed: 0 }));
    entry.total++;
    if (row.status !== 'uncovered') entry.cited++;
    if (row.status === 'passed') entry.passed++;
    if (row.status === 'failed') entry.failed++;
  }
  return [...out.values()];
}
