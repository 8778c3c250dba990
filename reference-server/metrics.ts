// A small Prometheus registry (text exposition format 0.0.4): counters, gauges and histograms with labels.
// Hand-written because the server needs three metric kinds and no push, pull adapters or default collectors.
import type { Counter, Gauge, Histogram, Labels, Metrics } from './context.ts';

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

// Label sets repeat endlessly on hot paths (a frame type, an error code), so their rendered keys are memoised by a
// cheap concatenation of the raw names and values; the cache is bounded so that unexpected cardinality cannot grow it.
const labelKeys = new Map<string, string>();
const MAX_CACHED_LABEL_SETS = 10_000;

function labelKey(labels: Labels | undefined): string {
  if (!labels) return '';
  let raw = '';
  for (const k in labels) raw += `${k}\u0001${labels[k]}\u0002`;
  if (raw === '') return '';
  const cached = labelKeys.get(raw);
  if (cached !== undefined) return cached;
  const keys = Object.keys(labels).sort();
  const key = keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(',');
  if (labelKeys.size < MAX_CACHED_LABEL_SETS) labelKeys.set(raw, key);
  return key;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function withLabels(name: string, key: string, extra?: string): string {
  const parts = [key, extra].filter((p) => p !== undefined && p !== '');
  return parts.length === 0 ? name : `${name}{${parts.join(',')}}`;
}

function formatNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

interface Family {
  render(): string[];
}

class CounterImpl implements Counter, Family {
  private readonly values = new Map<string, number>();
  constructor(private readonly name: string, private readonly help: string) {}
  inc(labels?: Labels, by = 1): void {
    if (by < 0) throw new RangeError('a counter only goes up');
    const key = labelKey(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.values.size === 0) lines.push(`${this.name} 0`);
    for (const [key, value] of this.values) lines.push(`${withLabels(this.name, key)} ${formatNumber(value)}`);
    return lines;
  }
}

class GaugeImpl implements Gauge, Family {
  private readonly values = new Map<string, number>();
  constructor(private readonly name: string, private readonly help: string, private readonly collect?: () => number) {}
  set(value: number, labels?: Labels): void {
    this.values.set(labelKey(labels), value);
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    if (this.collect) this.values.set('', this.collect());
    if (this.values.size === 0) lines.push(`${this.name} 0`);
    for (const [key, value] of this.values) lines.push(`${withLabels(this.name, key)} ${formatNumber(value)}`);
    return lines;
  }
}

class HistogramImpl implements Histogram, Family {
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(private readonly name: string, private readonly help: string, private readonly buckets: number[]) {
    if (buckets.some((b, i) => i > 0 && b <= buckets[i - 1]!)) throw new RangeError('buckets must increase');
  }
  observe(value: number, labels?: Labels): void {
    const key = labelKey(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    const all = this.series.size === 0 ? new Map([['', { counts: this.buckets.map(() => 0), sum: 0, count: 0 }]]) : this.series;
    for (const [key, s] of all) {
      this.buckets.forEach((bound, i) => lines.push(`${withLabels(`${this.name}_bucket`, key, `le="${formatNumber(bound)}"`)} ${s.counts[i]}`));
      lines.push(`${withLabels(`${this.name}_bucket`, key, 'le="+Inf"')} ${s.count}`);
      lines.push(`${withLabels(`${this.name}_sum`, key)} ${formatNumber(s.sum)}`);
      lines.push(`${withLabels(`${this.name}_count`, key)} ${s.count}`);
    }
    return lines;
  }
}

export class MetricsRegistry implements Metrics {
  private readonly families = new Map<string, Family & (Counter | Gauge | Histogram)>();

  private register<T extends Family & (Counter | Gauge | Histogram)>(name: string, make: () => T): T {
    if (!NAME.test(name)) throw new RangeError(`invalid metric name ${name}`);
    const existing = this.families.get(name);
    if (existing) return existing as T;
    const created = make();
    this.families.set(name, created);
    return created;
  }

  counter(name: string, help: string): Counter {
    return this.register(name, () => new CounterImpl(name, help));
  }
  gauge(name: string, help: string, collect?: () => number): Gauge {
    return this.register(name, () => new GaugeImpl(name, help, collect));
  }
  histogram(name: string, help: string, buckets: number[]): Histogram {
    return this.register(name, () => new HistogramImpl(name, help, buckets));
  }
  render(): string {
    const lines: string[] = [];
    for (const family of this.families.values()) lines.push(...family.render());
    return lines.join('\n') + '\n';
  }
}

/** Latency buckets in seconds, from 100 µs to 10 s. */
export const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
