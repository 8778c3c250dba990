// One case's transcript: every HTTP exchange and every WebSocket frame, sent and received, in case time, so that a
// failure report shows what the server actually did. Protocol violations spotted along the way (a frame failing its
// schema, a deliver frame breaking DLV-6) are collected here and fail the case at its next check.
import { CaseFailure } from './case.ts';

export interface TranscriptLine {
  /** Milliseconds since the case started. */
  at: number;
  /** `http`, or the label of a WebSocket connection such as `alice/1#2`. */
  channel: string;
  direction: 'sent' | 'received' | 'note';
  /** The frame or body as JSON, or a short text (`GET /v1/devices`, `closed 4400 MALFORMED_FRAME`). */
  data: unknown;
}

/** Hard cap so that a runaway case cannot fill a report. */
const MAX_LINES = 2000;

export class Transcript {
  readonly lines: TranscriptLine[] = [];
  readonly violations: CaseFailure[] = [];
  private dropped = 0;
  constructor(private readonly startedAt: number) {}

  now(): number {
    return Math.round((performance.now() - this.startedAt) * 10) / 10;
  }

  add(channel: string, direction: TranscriptLine['direction'], data: unknown, at = this.now()): void {
    if (this.lines.length >= MAX_LINES) {
      this.dropped++;
      return;
    }
    this.lines.push({ at, channel, direction, data });
  }

  /** Records a protocol violation; the case fails with the first one at its next wait or at its end. */
  violation(failure: CaseFailure): void {
    this.violations.push(failure);
    this.add('suite', 'note', `violation: ${failure.message}`);
  }

  throwIfViolated(): void {
    const first = this.violations[0];
    if (first) throw first;
  }

  /** The lines in time order (connection transcripts arrive merged from several sources). */
  sorted(): TranscriptLine[] {
    const out = [...this.lines].sort((a, b) => a.at - b.at);
    if (this.dropped > 0) out.push({ at: this.now(), channel: 'suite', direction: 'note', data: `${this.dropped} more lines dropped` });
    return out;
  }
}

/** One line of text per transcript line, for the terminal and TAP reporters. */
export function formatTranscript(lines: readonly TranscriptLine[], maxLines = 80, maxWidth = 400): string[] {
  const shown = lines.length > maxLines ? [...lines.slice(0, 20), undefined, ...lines.slice(-(maxLines - 21))] : lines;
  return shown.map((line) => {
    if (line === undefined) return `      … ${lines.length - maxLines + 1} lines left out …`;
    const arrow = line.direction === 'sent' ? '→' : line.direction === 'received' ? '←' : '·';
    let text = typeof line.data === 'string' ? line.data : JSON.stringify(line.data);
    if (text.length > maxWidth) text = `${text.slice(0, maxWidth)}… (${text.length} chars)`;
    return `${line.at.toFixed(1).padStart(8)} ms  ${line.channel.padEnd(12)} ${arrow} ${text}`;
  });
}
