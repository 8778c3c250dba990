// `tickwire load report [--html FILE] results.json`: renders a saved JSON report (from `--output`) again, as the
// text summary on stdout, and as the self-contained HTML report when --html is given. The same JSON gives the same
// HTML as `--html` gave during the run. (`tickwire load --help` describes it; the dispatcher answers --help.)
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { UsageError } from '../bin/command.ts';
import { renderHtml } from './html-report.ts';
import { renderText, type LoadReport } from './report.ts';

/** Reads and checks a saved report: a UsageError when the file is unreadable or is not a tickwire-load report. */
export function readReport(path: string): LoadReport {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new UsageError(`cannot read ${path} as JSON: ${(error as Error).message}`);
  }
  const r = value as Partial<LoadReport> | null;
  if (typeof r !== 'object' || r === null || r.tool !== 'tickwire-load') throw new UsageError(`${path} is not a tickwire load report (no "tool": "tickwire-load")`);
  if (r.version !== 1) throw new UsageError(`${path} is a version ${String(r.version)} report; this tool reads version 1`);
  for (const key of ['options', 'sessions', 'messages', 'verdict'] as const) {
    if (typeof r[key] !== 'object' || r[key] === null) throw new UsageError(`${path} has no "${key}" object`);
  }
  // Reports written before the timeline existed have none; the charts over time are then empty.
  return { ...r, timeline: Array.isArray(r.timeline) ? r.timeline : [] } as LoadReport;
}

export async function runReportCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, strict: true, options: { html: { type: 'string' } } });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (parsed.positionals.length !== 1) throw new UsageError('tickwire load report needs one JSON report file');
  const report = readReport(parsed.positionals[0]!);
  if (parsed.values.html !== undefined) writeFileSync(parsed.values.html, renderHtml(report));
  process.stdout.write(renderText(report));
  return 0;
}
