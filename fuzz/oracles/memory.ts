// The memory oracle: with --pid (the kernel's VmRSS in /proc/PID/status) or --metrics-url (a Prometheus
// `…process_resident_memory_bytes` gauge) the fuzzer samples the server's resident memory after every batch. After a
// warm-up, the largest sample is the baseline; the server fails when `sustain` consecutive samples all stay more than
// `limitBytes` above it: growth that does not come back down, as a leak would, rather than one busy moment.
import { readFile } from 'node:fs/promises';
import { finding, type Finding } from './finding.ts';

export interface MemoryOptions {
  pid?: number;
  metricsUrl?: string;
  /** Growth over the warm-up baseline that counts as unbounded. */
  limitBytes: number;
  /** Samples (batches) of warm-up. */
  warmup: number;
  /** Consecutive samples over the limit that make a failure. */
  sustain: number;
}

export interface MemorySample {
  /** Milliseconds since the campaign started. */
  at: number;
  bytes: number;
}

export class MemoryWatch {
  readonly samples: MemorySample[] = [];
  private baseline = 0;
  private over = 0;
  private reported = false;
  private readonly startedAt = performance.now();
  /** Why sampling stopped working, if it did. */
  problem: string | undefined;

  constructor(private readonly options: MemoryOptions) {}

  get enabled(): boolean {
    return this.options.pid !== undefined || this.options.metricsUrl !== undefined;
  }

  get baselineBytes(): number {
    return this.baseline;
  }

  get peakBytes(): number {
    return this.samples.reduce((max, s) => Math.max(max, s.bytes), 0);
  }

  async read(): Promise<number | undefined> {
    if (this.options.pid !== undefined) {
      const status = await readFile(`/proc/${this.options.pid}/status`, 'utf8');
      const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
      if (!match) throw new Error(`no VmRSS in /proc/${this.options.pid}/status`);
      return Number(match[1]) * 1024;
    }
    if (this.options.metricsUrl !== undefined) {
      const response = await fetch(this.options.metricsUrl, { signal: AbortSignal.timeout(5000) });
      const text = await response.text();
      const match = /^[A-Za-z_:]*process_resident_memory_bytes(?:\{[^}]*\})?\s+([0-9.eE+-]+)/m.exec(text);
      if (!match) throw new Error(`no process_resident_memory_bytes gauge at ${this.options.metricsUrl}`);
      return Number(match[1]);
    }
    return undefined;
  }

  /** Takes one sample; returns a finding the first time growth is sustained. */
  async sample(): Promise<Finding | undefined> {
    if (!this.enabled || this.problem) return undefined;
    let bytes: number | undefined;
    try {
      bytes = await this.read();
    } catch (error) {
      this.problem = (error as Error).message;
      return undefined;
    }
    if (bytes === undefined) return undefined;
    this.samples.push({ at: Math.round(performance.now() - this.startedAt), bytes });
    if (this.samples.length <= this.options.warmup) {
      this.baseline = Math.max(this.baseline, bytes);
      return undefined;
    }
    if (bytes > this.baseline + this.options.limitBytes) this.over++;
    else this.over = 0;
    if (this.over >= this.options.sustain && !this.reported) {
      this.reported = true;
      const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;
      // Section 9.7 (no requirement ID): every resource a client can make the server spend is bounded.
      return finding('memory', '§9.7', `the server's memory grew by ${mb(bytes - this.baseline)} and stayed up`, `at most ${mb(this.options.limitBytes)} over the warm-up peak of ${mb(this.baseline)}`, `${mb(bytes)} after ${this.samples.length} samples; the last ${this.options.sustain}: ${this.samples.slice(-this.options.sustain).map((s) => mb(s.bytes)).join(', ')}`);
    }
    return undefined;
  }
}
