// Samples the server's memory and CPU once a second while a run goes on: from /proc/<pid> when the server runs on
// this machine (--pid, or the built-in server), else from its Prometheus metrics endpoint (--metrics-url), reading
// tickwire_process_resident_memory_bytes / process_resident_memory_bytes and process_cpu_seconds_total when present.
import { readFileSync } from 'node:fs';

export interface ServerSample {
  /** Milliseconds since the run started. */
  t: number;
  rssBytes: number;
  /** CPU use since the previous sample, in percent of one core; undefined for the first sample or when unknown. */
  cpuPercent?: number;
}

/** Linux's USER_HZ, the unit of utime and stime in /proc/<pid>/stat. */
const CLOCK_TICKS_PER_SECOND = 100;

function procSample(pid: number): { rssBytes: number; cpuSeconds: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 of the whole line.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpu = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
    return rss ? { rssBytes: Number(rss[1]) * 1024, cpuSeconds: cpu } : undefined;
  } catch {
    return undefined;
  }
}

async function metricsSample(url: string): Promise<{ rssBytes: number; cpuSeconds?: number } | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    const text = await response.text();
    const value = (name: string) => {
      const match = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+([0-9.eE+-]+)`, 'm').exec(text);
      return match ? Number(match[1]) : undefined;
    };
    const rss = value('tickwire_process_resident_memory_bytes') ?? value('process_resident_memory_bytes');
    if (rss === undefined) return undefined;
    const cpu = value('process_cpu_seconds_total');
    return cpu === undefined ? { rssBytes: rss } : { rssBytes: rss, cpuSeconds: cpu };
  } catch {
    return undefined;
  }
}

export class ServerSampler {
  readonly samples: ServerSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private last: { at: number; cpuSeconds?: number } | undefined;
  private readonly startedAt = performance.now();

  constructor(private readonly source: { pid: number } | { metricsUrl: string }) {}

  async sample(): Promise<ServerSample | undefined> {
    const reading = 'pid' in this.source ? procSample(this.source.pid) : await metricsSample(this.source.metricsUrl);
    if (!reading) return undefined;
    const at = performance.now();
    const sample: ServerSample = { t: Math.round(at - this.startedAt), rssBytes: reading.rssBytes };
    if (this.last?.cpuSeconds !== undefined && reading.cpuSeconds !== undefined && at > this.last.at) {
      sample.cpuPercent = Math.round(((reading.cpuSeconds - this.last.cpuSeconds) / ((at - this.last.at) / 1000)) * 1000) / 10;
    }
    this.last = { at, ...(reading.cpuSeconds !== undefined ? { cpuSeconds: reading.cpuSeconds } : {}) };
    this.samples.push(sample);
    return sample;
  }

  start(everyMs = 1000): void {
    this.timer = setInterval(() => void this.sample(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  get latest(): ServerSample | undefined {
    return this.samples.at(-1);
  }
}
