// The HTML reporter: one self-contained file (inline CSS, no scripts, no external resources) with the summary,
// coverage per spec section, every failure with its requirement sentence, Expected vs Actual and transcript, the
// cases not checked, and the full requirement coverage table.
import { requirement } from '../../spec/index.ts';
import { coverageBySection } from '../coverage.ts';
import type { CaseResult, RunReport } from '../runner.ts';
import { formatTranscript } from '../transcript.ts';

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const CSS = `
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
.OK,.passed{color:#176f2c}.FAILED,.failed{color:#b00020}.NON-STRICT{color:#a65e00}.UNSUPPORTED,.NOT-RUN,.not-checked,.uncovered,.internal{color:#666}
.failure{border:1px solid #e0b4b4;background:#fff6f6;padding:.5em 1em;margin:1em 0}
pre{background:#f6f6f6;padding:.5em;overflow-x:auto;font-size:12px}code{font-size:12px}
`;

function failureSection(r: CaseResult): string {
  const f = r.failure;
  const parts = [`<div class="failure" id="${esc(r.id)}"><h3><span class="${r.verdict}">${r.verdict}</span> <code>${esc(r.id)}</code> [${r.level.toUpperCase()}] ${esc(r.title)}</h3>`];
  if (f) {
    parts.push(`<p><b>${esc(f.requirementId)}</b>: ${esc(f.requirementText)}</p>`);
    parts.push(`<table><tr><th>Expected</th><td><code>${esc(f.expected)}</code></td></tr><tr><th>Actual</th><td><code>${esc(f.actual)}</code></td></tr></table>`);
  }
  const others = r.requirements.filter((id) => id !== f?.requirementId);
  if (others.length > 0) parts.push(`<p>Also checks: ${others.map((id) => `<b title="${esc(requirement(id)?.text ?? '')}">${esc(id)}</b>`).join(', ')}</p>`);
  if (r.transcript?.length) parts.push(`<details open><summary>Transcript (${r.transcript.length} lines)</summary><pre>${esc(formatTranscript(r.transcript, 400, 2000).join('\n'))}</pre></details>`);
  parts.push('</div>');
  return parts.join('\n');
}

export function renderHtml(report: RunReport): string {
  const s = report.summary;
  const failing = report.results.filter((r) => r.verdict === 'FAILED' || r.verdict === 'NON-STRICT');
  const skipped = report.results.filter((r) => r.verdict === 'UNSUPPORTED' || r.verdict === 'NOT-RUN');
  const out = [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8"><title>Tickwire conformance report</title>',
    `<style>${CSS}</style></head><body>`,
    `<h1>Tickwire conformance: <span class="${report.exitCode === 0 ? 'OK' : 'FAILED'}">${report.exitCode === 0 ? 'PASS' : 'FAIL'}</span></h1>`,
    `<p>${report.urls ? `One service at ${report.urls.map((u) => `<code>${esc(u)}</code>`).join(', ')}` : `Server <code>${esc(report.url)}</code>`}, ${esc(report.startedAt)}, ${(report.durationMs / 1000).toFixed(1)} s, seed ${report.options.seed}${report.options.strict ? ', strict' : ''}.</p>`,
    report.aborted ? `<p class="FAILED"><b>Aborted:</b> ${esc(report.aborted)}</p>` : '',
    '<table><tr><th>Cases</th><th class="OK">OK</th><th class="FAILED">FAILED</th><th class="NON-STRICT">NON-STRICT</th><th class="UNSUPPORTED">UNSUPPORTED</th><th class="NOT-RUN">NOT-RUN</th></tr>',
    `<tr><td>${s.total}</td><td>${s.OK}</td><td>${s.FAILED}</td><td>${s['NON-STRICT']}</td><td>${s.UNSUPPORTED}</td><td>${s['NOT-RUN']}</td></tr></table>`,
    '<h2>Coverage per spec section</h2>',
    '<table><tr><th>Section</th><th>Server requirements</th><th>Cited</th><th>Passed</th><th>Failed</th></tr>',
    ...coverageBySection(report.coverage).map((row) => `<tr><td>${esc(row.section)}</td><td>${row.total}</td><td>${row.cited}</td><td class="passed">${row.passed}</td><td class="${row.failed ? 'failed' : ''}">${row.failed}</td></tr>`),
    '</table>',
    `<h2>Failures (${failing.length})</h2>`,
    failing.length === 0 ? '<p>None.</p>' : failing.map(failureSection).join('\n'),
    `<h2>Not checked (${skipped.length})</h2>`,
    skipped.length === 0 ? '<p>None.</p>' : `<ul>${skipped.map((r) => `<li><span class="${r.verdict}">${r.verdict}</span> <code>${esc(r.id)}</code>: ${esc(r.reason ?? '')}</li>`).join('')}</ul>`,
    '<h2>All cases</h2><table><tr><th>Case</th><th>Level</th><th>Verdict</th><th>Requirements</th><th>ms</th></tr>',
    ...report.results.map((r) => `<tr><td><code>${esc(r.id)}</code> ${esc(r.title)}</td><td>${r.level}</td><td class="${r.verdict}">${r.verdict}</td><td>${r.requirements.map(esc).join(' ')}</td><td>${r.durationMs}</td></tr>`),
    '</table>',
    `<h2>Requirement coverage (${report.coverage.uncovered.length} observable server requirements cited by no case)</h2>`,
    '<table><tr><th>ID</th><th>Level</th><th>Status</th><th>Cases</th><th>Requirement</th></tr>',
    ...report.coverage.rows.map((row) => `<tr><td>${esc(row.id)}</td><td>${row.level}</td><td class="${row.status}">${row.status}</td><td>${row.cases.map((c) => `<code class="${c.verdict}">${esc(c.id)}</code>`).join('<br>')}</td><td>${esc(row.text)}</td></tr>`),
    '</table></body></html>',
  ];
  return out.join('\n') + '\n';
}
