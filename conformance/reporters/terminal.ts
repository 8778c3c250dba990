// The terminal reporter: a progress line while cases run, then one block per case that did not pass (case id,
// the requirements with their sentences, Expected vs Actual, the transcript of frames) and a summary.
import { requirement } from '../../spec/index.ts';
import type { Verdict } from '../case.ts';
import { coverageBySection } from '../coverage.ts';
import type { CaseResult, RunReport } from '../runner.ts';
import { formatTranscript } from '../transcript.ts';

const COLOR: Record<Verdict, string> = { OK: '32', FAILED: '31', 'NON-STRICT': '33', UNSUPPORTED: '36', 'NOT-RUN': '90' };

export interface TerminalStyle {
  color: boolean;
}

function paint(style: TerminalStyle, code: string, text: string): string {
  return style.color ? `\u001b[${code}m${text}\u001b[0m` : text;
}

/** One progress line: `[12/57] OK 4.6/ack-upto-acknowledges-delivered (143 ms)`. */
export function progressLine(result: CaseResult, done: number, total: number, style: TerminalStyle): string {
  const verdict = paint(style, COLOR[result.verdict], result.verdict.padEnd(11));
  const width = String(total).length;
  return `[${String(done).padStart(width)}/${total}] ${verdict} ${result.id} (${result.durationMs} ms)`;
}

function wrap(text: string, width: number, indent: string): string[] {
  const words = text.split(/\s+/);
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    if (line.length + word.length + 1 > width && line.length > 0) {
      lines.push(indent + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(indent + line);
  return lines;
}

export function failureBlock(result: CaseResult, style: TerminalStyle): string[] {
  const out = [paint(style, COLOR[result.verdict], `${result.verdict} ${result.id} [${result.level.toUpperCase()}]`) + ` ${result.title}`];
  const failure = result.failure;
  if (failure) {
    out.push(`  failed requirement ${failure.requirementId}:`);
    out.push(...wrap(failure.requirementText, 100, '    '));
    out.push(`  Expected: ${failure.expected}`);
    out.push(`  Actual:   ${failure.actual}`);
    const others = result.requirements.filter((id) => id !== failure.requirementId);
    if (others.length > 0) {
      out.push('  the case also checks:');
      for (const id of others) out.push(...wrap(`${id}: ${requirement(id)?.text ?? ''}`, 100, '    '));
    }
  }
  if (result.transcript && result.transcript.length > 0) {
    out.push('  transcript:');
    out.push(...formatTranscript(result.transcript).map((l) => `  ${l}`));
  }
  return out;
}

export function renderTerminal(report: RunReport, style: TerminalStyle = { color: false }): string {
  const out: string[] = [];
  const failing = report.results.filter((r) => r.verdict === 'FAILED' || r.verdict === 'NON-STRICT');
  for (const result of failing) out.push('', ...failureBlock(result, style));
  const skipped = report.results.filter((r) => r.verdict === 'UNSUPPORTED' || r.verdict === 'NOT-RUN');
  if (skipped.length > 0) {
    out.push('', 'Not checked:');
    for (const r of skipped) out.push(`  ${r.verdict.padEnd(11)} ${r.id}: ${r.reason ?? ''}`);
  }
  out.push('', 'Coverage by section (server requirements cited / total, passed):');
  for (const row of coverageBySection(report.coverage)) {
    out.push(`  ${row.section.padEnd(48)} ${String(row.cited).padStart(3)}/${String(row.total).padEnd(3)} passed ${row.passed}${row.failed ? `, failed ${row.failed}` : ''}`);
  }
  out.push(`  ${report.coverage.uncovered.length} observable server requirements are cited by no case of this run.`);
  const s = report.summary;
  out.push('');
  if (report.aborted) out.push(paint(style, '31', `ABORTED: ${report.aborted}`));
  out.push(
    `${s.total} cases: ${s.OK} OK, ${s.FAILED} FAILED, ${s['NON-STRICT']} NON-STRICT, ${s.UNSUPPORTED} UNSUPPORTED, ${s['NOT-RUN']} NOT-RUN` +
      ` in ${(report.durationMs / 1000).toFixed(1)} s (seed ${report.options.seed}${report.options.strict ? ', strict' : ''})`,
  );
  out.push(report.exitCode === 0 ? paint(style, '32', 'conformance: PASS') : paint(style, '31', `conformance: FAIL (exit ${report.exitCode})`));
  return out.join('\n') + '\n';
}
