// The TAP 14 reporter: one test point per case. NON-STRICT and UNSUPPORTED and NOT-RUN are `# SKIP` or `# TODO`
// so that TAP consumers do not count them as failures; failures carry a YAML block with the details.
import type { RunReport } from '../runner.ts';
import { formatTranscript } from '../transcript.ts';

function yamlString(text: string): string {
  return JSON.stringify(text);
}

export function renderTap(report: RunReport): string {
  const out = ['TAP version 14', `1..${report.results.length}`];
  report.results.forEach((r, i) => {
    const n = i + 1;
    const name = `${r.id} - ${r.title.replace(/#/g, '\\#')}`;
    if (r.verdict === 'OK') out.push(`ok ${n} ${name}`);
    else if (r.verdict === 'UNSUPPORTED' || r.verdict === 'NOT-RUN') out.push(`ok ${n} ${name} # SKIP ${r.verdict}: ${r.reason ?? ''}`);
    else if (r.verdict === 'NON-STRICT') out.push(`not ok ${n} ${name} # TODO NON-STRICT (should-level)`);
    else out.push(`not ok ${n} ${name}`);
    if (r.failure) {
      out.push('  ---');
      out.push(`  verdict: ${r.verdict}`);
      out.push(`  requirement: ${r.failure.requirementId}`);
      out.push(`  sentence: ${yamlString(r.failure.requirementText)}`);
      out.push(`  expected: ${yamlString(r.failure.expected)}`);
      out.push(`  actual: ${yamlString(r.failure.actual)}`);
      if (r.transcript) {
        out.push('  transcript:');
        for (const line of formatTranscript(r.transcript, 60)) out.push(`    - ${yamlString(line.trim())}`);
      }
      out.push('  ...');
    }
  });
  if (report.aborted) out.push(`Bail out! ${report.aborted}`);
  return out.join('\n') + '\n';
}
