// A small HDR-like latency histogram: logarithmic buckets 1 % wide from 1 µs to about 17 minutes, so percentiles are
// exact to within 1 % whatever the number of samples, memory stays constant (about 2,100 counters) and histograms
// from several worker processes merge by adding counts. Count, sum, min and max are kept exactly.

/** Relative width of one bucket: a reported percentile is at most this much above the true value. */
const PRECISION = 0.01;
const LOG_BASE = Math.log1p(PRECISION);
/** Values are recorded in microseconds; anything below 1 µs lands in the first bucket. */
const MIN_US = 1;
/** 1e9 µs (about 17 minutes) and above land in the last bucket. */
const MAX_US = 1e9;
const BUCKETS = Math.ceil(Math.log(MAX_US / MIN_US) / LOG_BASE) + 1;

/** The plain-object form that crosses process boundaries (IPC) and goes into the JSON report. */
export interface HistogramSnapshot {
  count: number;
  sumMs: number;
  minMs: number;
  maxMs: number;
  /** Sparse [bucketIndex, count] pairs. */
  buckets: Array<[number, number]>;
}

export interface LatencySummary {
  count: number;
  minMs: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

function bucketOf(valueMs: number): number {
  const us = valueMs * 1000;
  if (!(us > MIN_US)) return 0;
  const index = Math.ceil(Math.log(us / MIN_US) / LOG_BASE);
  return index >= BUCKETS ? BUCKETS - 1 : index;
}

/** The upper bound of a bucket, in milliseconds. */
function upperMs(index: number): number {
  return (MIN_US * Math.exp(index * LOG_BASE)) / 1000;
}

export class Histogram {
  private counts = new Float64Array(BUCKETS);
  count = 0;
  private sum = 0;
  private min = Infinity;
  private max = -Infinity;

  /** Records one latency in milliseconds. */
  record(valueMs: number): void {
    if (!Number.isFinite(valueMs) || valueMs < 0) throw new RangeError(`latency must be a finite non-negative number (got ${valueMs})`);
    this.counts[bucketOf(valueMs)]!++;
    this.count++;
    this.sum += valueMs;
    if (valueMs < this.min) this.min = valueMs;
    if (valueMs > this.max) this.max = valueMs;
  }

  reset(): void {
    this.counts = new Float64Array(BUCKETS);
    this.count = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = -Infinity;
  }

  /** The value at quantile q (0..1): the smallest bucket bound below which at least q of the samples lie. */
  quantile(q: number): number {
    if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile must be in 0..1 (got ${q})`);
    if (this.count === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(Math.max(upperMs(i), this.min), this.max);
    }
    return this.max;
  }

  summary(): LatencySummary {
    const round = (v: number) => (Number.isFinite(v) ? Math.round(v * 1000) / 1000 : NaN);
    return {
      count: this.count,
      minMs: round(this.count ? this.min : NaN),
      meanMs: round(this.count ? this.sum / this.count : NaN),
      p50Ms: round(this.quantile(0.5)),
      p90Ms: round(this.quantile(0.9)),
      p99Ms: round(this.quantile(0.99)),
      p999Ms: round(this.quantile(0.999)),
      maxMs: round(this.count ? this.max : NaN),
    };
  }

  snapshot(): HistogramSnapshot {
    const buckets: Array<[number, number]> = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]! > 0) buckets.push([i, this.counts[i]!]);
    return { count: this.count, sumMs: this.sum, minMs: this.min, maxMs: this.max, buckets };
  }

  /** Adds the samples of another histogram (from another worker process). */
  merge(other: HistogramSnapshot): this {
    for (const [index, n] of other.buckets) {
      if (!Number.isInteger(index) || index < 0 || index >= BUCKETS) throw new RangeError(`bucket index ${index} out of range`);
      this.counts[index]! += n;
    }
    this.count += other.count;
    this.sum += other.sumMs;
    if (other.count > 0) {
      this.min = Math.min(this.min, other.minMs);
      this.max = Math.max(this.max, other.maxMs);
    }
    return this;
  }

  static from(snapshots: HistogramSnapshot[]): Histogram {
    const h = new Histogram();
    for (const s of snapshots) h.merge(s);
    return h;
  }
}
