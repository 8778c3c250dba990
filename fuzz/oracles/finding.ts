// What an oracle reports when the server under test does something the spec does not allow. Findings carry the
// requirement they break, and Expected versus Actual, like the conformance suite's failures.

export type OracleName = 'answers' | 'health' | 'victim' | 'memory';

export interface Finding {
  oracle: OracleName;
  /** The requirement ID of spec/PROTOCOL.md that the observation breaks, e.g. TRN-26. */
  requirement: string;
  /** What the finding is about (the message or request, for reports); not part of its identity. */
  subject?: string;
  /** One line: what went wrong. */
  summary: string;
  expected?: string;
  actual?: string;
}

export function finding(oracle: OracleName, requirement: string, summary: string, expected?: string, actual?: string): Finding {
  return { oracle, requirement, summary, ...(expected === undefined ? {} : { expected }), ...(actual === undefined ? {} : { actual }) };
}

/** A finding about `subject` (a message or request): the same failure on other subjects counts as the same. */
export function findingAbout(subject: string, oracle: OracleName, requirement: string, summary: string, expected?: string, actual?: string): Finding {
  return { subject, ...finding(oracle, requirement, summary, expected, actual) };
}

/** A stable key for "the same failure": the oracle, the requirement and the summary without numbers and ids. */
export function findingKey(f: Finding): string {
  return `${f.oracle}|${f.requirement}|${f.summary.replace(/[0-9]+/g, 'N').replace(/"[^"]*"/g, '"…"')}`;
}

export function showFinding(f: Finding): string {
  const lines = [`[${f.requirement}] ${f.subject !== undefined ? `${f.subject}: ` : ''}${f.summary}`];
  if (f.expected !== undefined) lines.push(`  expected: ${f.expected}`);
  if (f.actual !== undefined) lines.push(`  actual:   ${f.actual}`);
  return lines.join('\n');
}

/** A JSON value shortened for a report line. */
export function show(value: unknown, max = 300): string {
  let text: string;
  try {
    text = typeof value === 'string' ? value : JSON.stringify(value);
  } catch {
    text = String(value);
  }
  if (text === undefined) text = String(value);
  return text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text;
}
