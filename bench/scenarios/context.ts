// What every orchestrator-side scenario gets: the child registry, the workers, seeded randomness, the options and
// a progress printer. Also the verdict on what limited a figure, from the CPU share of each process.
import type { Children } from '../lib/children.ts';
import type { Rng } from '../lib/rng.ts';
import type { WorkerHandle } from '../lib/workers.ts';

export interface BenchOptions {
  quick: boolean;
  pairs: number;
  inFlight: number;
  /** Deliveries after which the throughput window closes early (over all workers). */
  messages: number;
  warmupMs: number;
  durationMs: number;
  connections: number;
  setupConcurrency: number;
  backlog: number;
  backlogSenders: number;
  workers: number;
  payloadBytes: number;
  seed: number;
  only: Set<ScenarioName>;
  out: string;
}

export type ScenarioName = 'throughput' | 'sessions' | 'backlog';

export interface Context {
  children: Children;
  workers: WorkerHandle[];
  rng: Rng;
  options: BenchOptions;
  /** Directory that receives the servers' stderr logs (removed at the end with the other temp dirs). */
  logDir: string;
  progress(message: string): void;
}

/** CPU share per process over a measured interval (1.0 = one core). */
export type CpuShares = Record<string, number>;

/** A short verdict on what bounded a measurement, from the CPU shares and the machine's core count. */
export function limiterOf(cpu: CpuShares, cores: number, serverName = 'server'): string {
  const server = cpu[serverName] ?? 0;
  const others = cpu['others'] ?? 0;
  const clients = Object.entries(cpu).filter(([name]) => name.startsWith('worker')).map(([, v]) => v);
  const clientMax = Math.max(0, ...clients);
  const totalUsed = Object.values(cpu).reduce((a, b) => a + b, 0);
  const contention = others >= 0.25 ? `; other processes took ${others.toFixed(2)} core` : '';
  const parts: string[] = [];
  if (server >= 0.9) parts.push(`server CPU (${server.toFixed(2)} core, single-threaded)`);
  if (clientMax >= 0.9) parts.push(`client worker CPU (${clientMax.toFixed(2)} core)`);
  if (parts.length === 0 && totalUsed >= cores * 0.85) parts.push(`machine CPU (${totalUsed.toFixed(2)} of ${cores} cores)`);
  if (parts.length === 0) parts.push(`not CPU (server ${server.toFixed(2)}, clients ${clients.map((c) => c.toFixed(2)).join('+')} core): latency/IO-bound`);
  return parts.join('; ') + contention;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
