// CPU, resident memory and open files of the processes of a cluster run, sampled from /proc four times a second:
// the server (one process, or the primary of `serve --workers N` and its workers), the load tool (its coordinator
// and the workers it forks) and Redis, plus the machine's busy time. The window that matters (a run's load phase)
// is known only from the load tool's report afterwards, so every sample is kept and read by time. Node processes
// only count as server or tool workers (tsx starts an esbuild helper below each of them: its CPU is counted, its
// memory is not).
import { readdirSync, readFileSync } from 'node:fs';
import { readMachineTimes, treeOf } from './proc.ts';

const SAMPLE_EVERY_MS = 250;
/** Open files are counted less often: a worker holding 17,000 sockets has a large /proc/<pid>/fd to list. */
const FDS_EVERY_MS = 2000;
const CLOCK_TICKS_PER_SECOND = 100;
const PAGE_BYTES = 4096;

export type Role = 'server' | 'tool' | 'redis';

interface Reading {
  pid: number;
  role: Role;
  /** The root of its role (the server's primary, the tool's coordinator, redis-server). */
  root: boolean;
  node: boolean;
  cpuSeconds: number;
  rssBytes: number;
  fds?: number;
}

interface Sample {
  at: number;
  machine: { busy: number; irq: number; steal: number };
  procs: Reading[];
}

/** Cores used over a window (1.0 = one core), by role, with the busiest single process of each. */
export interface ClusterCpu {
  server: number;
  serverBusiest: number;
  serverProcesses: number;
  tool: number;
  toolBusiest: number;
  toolProcesses: number;
  redis: number;
  /** Everything else the machine did: other processes, interrupts (irq, softirq) and steal, as below. */
  others: number;
  /** Of `others`: interrupt handling (loopback TCP of this run included) and time a hypervisor gave elsewhere. */
  irq: number;
  steal: number;
  machine: number;
}

export interface RssReading {
  /** performance.now() of the sample */
  at: number;
  /** Sum over the role's worker processes (the server: the processes that hold sessions). */
  workersBytes: number;
  /** The root process alone (the primary of `serve --workers`, the coordinator, redis-server). */
  rootBytes: number;
  byPid: Record<string, number>;
}

/** CPU seconds, RSS and whether it is node, from /proc/<pid>/stat (one read); undefined once it has exited. */
function readStat(pid: number): { cpuSeconds: number; rssBytes: number; node: boolean } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  // Fields after the ')' start at field 3 (state): utime is field 14, stime 15, rss (pages) 24.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { cpuSeconds: (Number(rest[11]) + Number(rest[12])) / CLOCK_TICKS_PER_SECOND, rssBytes: Number(rest[21]) * PAGE_BYTES, node: name === 'node' || name.startsWith('node') };
}

function countFds(pid: number): number | undefined {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

export class ClusterSampler {
  private readonly samples: Sample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private lastFdsAt = -Infinity;

  constructor(private readonly roots: Partial<Record<Role, number>>) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Takes one sample now (also called by the timer). */
  sample(): void {
    const at = performance.now();
    const withFds = at - this.lastFdsAt >= FDS_EVERY_MS;
    if (withFds) this.lastFdsAt = at;
    const procs: Reading[] = [];
    for (const role of ['server', 'tool', 'redis'] as const) {
      const root = this.roots[role];
      if (root === undefined) continue;
      for (const pid of treeOf(root)) {
        const stat = readStat(pid);
        if (!stat) continue;
        // Server workers and redis-server itself (not the child an AOF rewrite forks).
        const fds = withFds && ((role === 'server' && stat.node) || (role === 'redis' && pid === root)) ? countFds(pid) : undefined;
        procs.push({ pid, role, root: pid === root, ...stat, ...(fds !== undefined ? { fds } : {}) });
      }
    }
    this.samples.push({ at, machine: readMachineTimes(), procs });
  }

  /** Cores used by each role between `from` and `to` (performance.now()); undefined with fewer than two samples. */
  cpu(from: number, to: number): ClusterCpu | undefined {
    const inside = this.samples.filter((s) => s.at >= from && s.at <= to);
    const first = inside[0];
    const last = inside.at(-1);
    if (!first || !last || last.at - first.at < SAMPLE_EVERY_MS) return undefined;
    const seconds = (last.at - first.at) / 1000;
    // Each process from its first to its last reading inside the window (workers may start or end within it).
    const span = new Map<number, { role: Role; node: boolean; first: number; last: number }>();
    for (const sample of inside) {
      for (const p of sample.procs) {
        const known = span.get(p.pid);
        if (known) known.last = p.cpuSeconds;
        else span.set(p.pid, { role: p.role, node: p.node, first: p.cpuSeconds, last: p.cpuSeconds });
      }
    }
    const round = (v: number) => Math.round(v * 100) / 100;
    const of = (role: Role, nodeOnly = false) => [...span.values()].filter((s) => s.role === role && (!nodeOnly || s.node)).map((s) => (s.last - s.first) / seconds);
    const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
    const server = of('server');
    const tool = of('tool');
    const redis = of('redis');
    // Processes and the busiest: node processes only (the esbuild helpers tsx starts are counted in the sums).
    const serverNode = of('server', true);
    const toolNode = of('tool', true);
    const machine = (last.machine.busy - first.machine.busy) / seconds;
    const ours = sum(server) + sum(tool) + sum(redis);
    return {
      server: round(sum(server)),
      serverBusiest: round(Math.max(0, ...serverNode)),
      serverProcesses: serverNode.length,
      tool: round(sum(tool)),
      toolBusiest: round(Math.max(0, ...toolNode)),
      toolProcesses: toolNode.length,
      redis: round(sum(redis)),
      others: round(Math.max(0, machine - ours)),
      irq: round((last.machine.irq - first.machine.irq) / seconds),
      steal: round((last.machine.steal - first.machine.steal) / seconds),
      machine: round(machine),
    };
  }

  private reading(sample: Sample, role: Role): RssReading {
    const byPid: Record<string, number> = {};
    let workersBytes = 0;
    let rootBytes = 0;
    const procs = sample.procs.filter((p) => p.role === role);
    // A server without node children (the single process) is its own worker.
    const hasWorkers = procs.some((p) => !p.root && p.node);
    for (const p of procs) {
      if (p.root) rootBytes = p.rssBytes;
      // Redis: the server alone (an AOF rewrite forks a child that shares most of its pages).
      if (role === 'redis' ? !p.root : !p.node || (p.root && hasWorkers)) continue;
      byPid[p.pid] = p.rssBytes;
      workersBytes += p.rssBytes;
    }
    return { at: sample.at, workersBytes, rootBytes, byPid };
  }

  /** The last sample taken at or before `at` (performance.now()). */
  rssAt(role: Role, at: number): RssReading | undefined {
    const sample = this.samples.filter((s) => s.at <= at).at(-1);
    return sample ? this.reading(sample, role) : undefined;
  }

  /** The sample with the highest sum over the role's workers between `from` and `to`. */
  peakRss(role: Role, from: number, to: number): RssReading | undefined {
    let best: RssReading | undefined;
    for (const sample of this.samples) {
      if (sample.at < from || sample.at > to) continue;
      const reading = this.reading(sample, role);
      if (!best || reading.workersBytes > best.workersBytes) best = reading;
    }
    return best;
  }

  /** The most files each worker of a role (the server's primary apart) had open between `from` and `to`, by PID. */
  peakFds(role: Role, from: number, to: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (const sample of this.samples) {
      if (sample.at < from || sample.at > to) continue;
      const hasWorkers = sample.procs.some((p) => p.role === role && !p.root && p.node);
      for (const p of sample.procs) {
        if (p.role !== role || p.fds === undefined || (p.root && hasWorkers && role !== 'redis')) continue;
        out[p.pid] = Math.max(out[p.pid] ?? 0, p.fds);
      }
    }
    return out;
  }
}
