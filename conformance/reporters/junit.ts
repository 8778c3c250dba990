// The JUnit XML reporter (the Ant/Jenkins dialect CI systems read): one <testsuite> per spec chapter, one <testcase>
// per case. FAILED is <failure>; NON-STRICT, UNSUPPORTED and NOT-RUN are <skipped> with the reason.
import { chapterOf } from '../case.ts';
import type { CaseResult, RunReport } from '../runner.ts';
import { formatTranscript } from '../transcript.ts';

export function xmlEscape(text: string): string {
  // Characters XML 1.0 does not allow at all are dropped; the five markup characters are escaped.
  return text
    .replace(/[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function testcase(r: CaseResult): string[] {
  const head = `    <testcase classname="tickwire.conformance.${xmlEscape(r.section)}" name="${xmlEscape(`${r.id} ${r.title}`)}" time="${(r.durationMs / 1000).toFixed(3)}"`;
  if (r.verdict === 'OK') return [`${head}/>`];
  const out = [`${head}>`];
  if (r.verdict === 'FAILED' && r.failure) {
    const f = r.failure;
    const body = [`[${f.requirementId}] ${f.requirementText}`, `Expected: ${f.expected}`, `Actual:   ${f.actual}`, '', ...formatTranscript(r.transcript ?? [])].join('\n');
    out.push(`      <failure message="${xmlEscape(`[${f.requirementId}] expected ${f.expected}`)}" type="${xmlEscape(f.requirementId)}">${xmlEscape(body)}</failure>`);
  } else if (r.verdict === 'FAILED') {
    out.push(`      <failure message="failed" type="FAILED"/>`);
  } else {
    const reason = r.verdict === 'NON-STRICT' ? `NON-STRICT: ${r.failure?.message ?? 'should-level case failed'}` : `${r.verdict}: ${r.reason ?? ''}`;
    out.push(`      <skipped message="${xmlEscape(reason)}"/>`);
  }
  out.push('    </testcase>');
  return out;
}

export function renderJunit(report: RunReport): string {
  const chapters = new Map<string, CaseResult[]>();
  for (const r of report.results) {
    const chapter = chapterOf(r.id);
    let list = chapters.get(chapter);
    if (!list) chapters.set(chapter, (list = []));
    list.push(r);
  }
  const s = report.summary;
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="tickwire conformance" tests="${s.total}" failures="${s.FAILED}" errors="0" skipped="${s['NON-STRICT'] + s.UNSUPPORTED + s['NOT-RUN']}" time="${(report.durationMs / 1000).toFixed(3)}">`,
  ];
  for (const [chapter, results] of chapters) {
    const failures = results.filter((r) => r.verdict === 'FAILED').length;
    const skipped = results.filter((r) => r.verdict !== 'OK' && r.verdict !== 'FAILED').length;
    const time = results.reduce((sum, r) => sum + r.durationMs, 0) / 1000;
    out.push(`  <testsuite name="section ${xmlEscape(chapter)}" tests="${results.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${time.toFixed(3)}" timestamp="${report.startedAt.slice(0, 19)}">`);
    for (const r of results) out.push(...testcase(r));
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return out.join('\n') + '\n';
}
