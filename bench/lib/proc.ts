// Process measurements from /proc (Linux): resident memory and CPU time of a process by PID. The benchmark reads
// the server from outside, exactly as an operator would, instead of trusting the server's own report.
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat; 100 on every Linux the benchmark targets. */
const CLOCK_TICKS_PER_SECOND = 100;

/** VmRSS of a process in bytes. */
export function readRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** User plus system CPU time of a process, in seconds. */
export function readCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may contain spaces; fields are counted after its ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return (utime + stime) / CLOCK_TICKS_PER_SECOND;
}

/**
 * Busy CPU seconds of the whole machine, all processes and cores (everything but idle and iowait), and within them
 * interrupt handling (irq + softirq: much of loopback TCP is processed there, charged to no process) and steal (a
 * hypervisor's other guests), from /proc/stat.
 */
export function readMachineTimes(): { busy: number; irq: number; steal: number } {
  const first = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const [, ...fields] = first.trim().split(/\s+/);
  const t = fields.map(Number);
  // user nice system idle iowait irq softirq steal ...
  const all = t.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: (all - t[3]! - t[4]!) / CLOCK_TICKS_PER_SECOND, irq: (t[5]! + t[6]!) / CLOCK_TICKS_PER_SECOND, steal: (t[7] ?? 0) / CLOCK_TICKS_PER_SECOND };
}

/** CPU time the whole machine spent busy (all processes, all cores), in seconds. */
export function readMachineBusySeconds(): number {
  return readMachineTimes().busy;
}

/** The live children of `pid`, from /proc/<pid>/task/<tid>/children (Linux 3.5+). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      for (const child of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ')) if (child.trim()) out.push(Number(child));
    } catch {
      // the task ended meanwhile
    }
  }
  return out;
}

/** `root` and its live descendants, parents before children. */
export function treeOf(root: number): number[] {
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...childrenOf(out[i]!));
  return out;
}

/** Measures the CPU share of a set of processes over an interval: 1.0 means one full core. */
export class CpuMeter {
  private readonly start = new Map<string, number>();
  private readonly startedAt = performance.now();

  private readonly machineStart = readMachineBusySeconds();

  constructor(private readonly pids: Record<string, number>) {
    for (const [name, pid] of Object.entries(pids)) this.start.set(name, readCpuSeconds(pid));
  }

  /** Cores used by each process since the meter started (e.g. 0.97 = one core almost saturated). */
  read(): Record<string, number> {
    const seconds = (performance.now() - this.startedAt) / 1000;
    const out: Record<string, number> = {};
    for (const [name, pid] of Object.entries(this.pids)) {
      let now: number;
      try {
        now = readCpuSeconds(pid);
      } catch {
        continue;
      }
      out[name] = Math.round(((now - this.start.get(name)!) / seconds) * 100) / 100;
    }
    // Everything else the machine did meanwhile (other jobs sharing the cores skew every figure).
    const machine = (readMachineBusySeconds() - this.machineStart) / seconds;
    const ours = Object.values(out).reduce((a, b) => a + b, 0);
    out['others'] = Math.max(0, Math.round((machine - ours) * 100) / 100);
    return out;
  }
}

/** Several readings spaced out, to smooth over a garbage collection happening at one instant. */
export async function sampleRss(pid: number, samples = 3, spacingMs = 500): Promise<{ medianBytes: number; samples: number[] }> {
  const values: number[] = [];
  for (let i = 0; i < samples; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, spacingMs));
    values.push(readRssBytes(pid));
  }
  const sorted = [...values].sort((a, b) => a - b);
  return { medianBytes: sorted[Math.floor(sorted.length / 2)]!, samples: values };
}
