// Latency histograms: HDR histograms (hdr-histogram-js, pure JavaScript, no WebAssembly) in microseconds, three
// significant digits, so that p99.9 of a million samples is exact to 0.1 %. Workers encode theirs as compressed
// base64 (the HdrHistogram interchange format) and the coordinator merges them by adding counts, which is exact.
import { build, decodeFromCompressedBase64, encodeIntoCompressedBase64, type Histogram } from 'hdr-histogram-js';

/** Values are recorded in microseconds; the largest trackable value is one hour (the histogram grows as needed). */
const HIGHEST_TRACKABLE_US = 3_600_000_000;
const SIGNIFICANT_DIGITS = 3;

/** The figures every report gives for a latency, in milliseconds (three decimals). */
export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export class LatencyHistogram {
  private readonly histogram: Histogram;

  constructor(from?: Histogram) {
    this.histogram = from ?? build({ useWebAssembly: false, numberOfSignificantValueDigits: SIGNIFICANT_DIGITS, highestTrackableValue: HIGHEST_TRACKABLE_US, autoResize: true });
  }

  /** Records one latency in milliseconds (fractions kept to the microsecond; negative values count as zero). */
  record(ms: number): void {
    if (!Number.isFinite(ms)) throw new RangeError(`a latency must be a finite number (got ${ms})`);
    this.histogram.recordValue(Math.max(0, Math.round(ms * 1000)));
  }

  get count(): number {
    return this.histogram.totalCount;
  }

  /** The latency (ms) at or below which `percentile` percent of the values fall; 0 when empty. */
  at(percentile: number): number {
    if (!(percentile >= 0 && percentile <= 100)) throw new RangeError(`a percentile is in 0..100 (got ${percentile})`);
    if (this.count === 0) return 0;
    return this.histogram.getValueAtPercentile(percentile) / 1000;
  }

  /** Adds every count of `other` into this histogram (merging workers' histograms). */
  merge(other: LatencyHistogram): void {
    this.histogram.add(other.histogram);
  }

  percentiles(): Percentiles {
    const round = (us: number) => Math.round(us) / 1000;
    if (this.count === 0) return { count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
    const h = this.histogram;
    return {
      count: h.totalCount,
      p50: round(h.getValueAtPercentile(50)),
      p90: round(h.getValueAtPercentile(90)),
      p99: round(h.getValueAtPercentile(99)),
      p999: round(h.getValueAtPercentile(99.9)),
      // The bucket value, not the exact maximum: a decoded histogram knows only buckets, so merged reports agree.
      max: round(h.getValueAtPercentile(100)),
      mean: round(h.mean),
    };
  }

  /** Compressed base64 in the HdrHistogram interchange format, for IPC and for the JSON report. */
  encode(): string {
    return encodeIntoCompressedBase64(this.histogram);
  }

  static decode(text: string): LatencyHistogram {
    const decoded = decodeFromCompressedBase64(text, 32, false);
    const target = new LatencyHistogram();
    target.histogram.add(decoded);
    return target;
  }

  reset(): void {
    this.histogram.reset();
  }
}

/** A percentile line as the terminal report prints it. */
export function formatPercentiles(p: Percentiles): string {
  if (p.count === 0) return 'no samples';
  return `p50 ${p.p50} ms  p90 ${p.p90} ms  p99 ${p.p99} ms  p99.9 ${p.p999} ms  max ${p.max} ms  (n=${p.count})`;
}
