// The JSON reporter: the RunReport itself, whose shape is documented in conformance/README.md and versioned by
// `formatVersion`. Keys appear in a fixed order so that two reports of the same run diff cleanly.
import type { RunReport } from '../runner.ts';

export function renderJson(report: RunReport): string {
  return JSON.stringify(report, null, 2) + '\n';
}
