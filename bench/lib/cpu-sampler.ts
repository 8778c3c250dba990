// CPU use of a server and of a process tree (the load tool: its coordinator and the workers it forks), sampled
// from /proc four times a second while a run goes on, so that the share of each over a window picked afterwards
// (the load phase of a run, known only from its report) can be told: what limited a figure, the server, the load
// tool or the machine's cores.
import { childrenOf, readCpuSeconds, readMachineBusySeconds } from './proc.ts';
import type { CpuShares } from '../scenarios/context.ts';

const SAMPLE_EVERY_MS = 250;

/** User plus system CPU seconds of `pid` and its live descendants (those that exited already are not counted). */
export function readTreeCpuSeconds(pid: number): number {
  let total = 0;
  try {
    total = readCpuSeconds(pid);
  } catch {
    return 0;
  }
  for (const child of childrenOf(pid)) total += readTreeCpuSeconds(child);
  return total;
}

interface Sample {
  /** performance.now() */
  at: number;
  server: number;
  tool: number;
  machine: number;
}

export class CpuSampler {
  private readonly samples: Sample[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** The highest tree reading so far: workers that exit take their CPU time with them, so readings only go up. */
  private toolHigh = 0;

  constructor(
    private readonly serverPid: number,
    private readonly toolPid: number,
  ) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private sample(): void {
    let server: number;
    try {
      server = readCpuSeconds(this.serverPid);
    } catch {
      return;
    }
    this.toolHigh = Math.max(this.toolHigh, readTreeCpuSeconds(this.toolPid));
    this.samples.push({ at: performance.now(), server, tool: this.toolHigh, machine: readMachineBusySeconds() });
  }

  /**
   * Cores used by the server, the load tool and everything else on the machine between `from` and `to`
   * (performance.now()), from the samples nearest inside the window; undefined when it holds fewer than two.
   */
  shares(from: number, to: number): CpuShares | undefined {
    const inside = this.samples.filter((s) => s.at >= from && s.at <= to);
    const first = inside[0];
    const last = inside.at(-1);
    if (!first || !last || last.at - first.at < SAMPLE_EVERY_MS) return undefined;
    const seconds = (last.at - first.at) / 1000;
    const round = (v: number) => Math.round(v * 100) / 100;
    const server = (last.server - first.server) / seconds;
    const tool = (last.tool - first.tool) / seconds;
    const machine = (last.machine - first.machine) / seconds;
    // `workers` (the load tool) is the name limiterOf (scenarios/context.ts) reads as the client side.
    return { server: round(server), workers: round(tool), others: round(Math.max(0, machine - server - tool)) };
  }
}
