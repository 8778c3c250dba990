// The reporters by name, for `--reporter NAME`.
import type { RunReport } from '../runner.ts';
import { renderHtml } from './html.ts';
import { renderJson } from './json.ts';
import { renderJunit } from './junit.ts';
import { renderTap } from './tap.ts';
import { renderTerminal } from './terminal.ts';

export type ReporterName = 'terminal' | 'tap' | 'junit' | 'json' | 'html';
export const REPORTERS: Record<ReporterName, (report: RunReport) => string> = {
  terminal: (report) => renderTerminal(report),
  tap: renderTap,
  junit: renderJunit,
  json: renderJson,
  html: renderHtml,
};

export function isReporterName(name: string): name is ReporterName {
  return Object.hasOwn(REPORTERS, name);
}
