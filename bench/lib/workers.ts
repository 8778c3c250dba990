// The orchestrator's handle on its client workers (bench/worker.ts): sends a job over IPC and resolves with the
// worker's answer. Workers are forked once and reused by every scenario.
import type { ChildProcess } from 'node:child_process';
import { BenchError, forkWorker, type Children } from './children.ts';
import type { Job, JobReply, JobRequest, JobResultMap } from './jobs.ts';

export class WorkerHandle {
  private nextJobId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();

  constructor(readonly name: string, readonly child: ChildProcess) {
    child.on('message', (reply: JobReply) => {
      const entry = this.pending.get(reply.jobId);
      if (!entry) return;
      this.pending.delete(reply.jobId);
      if (reply.ok) entry.resolve(reply.result);
      else entry.reject(new BenchError('WORKER', `${name}: ${reply.error}`));
    });
    child.once('exit', (code, signal) => {
      for (const entry of this.pending.values()) entry.reject(new BenchError('WORKER', `${name} exited (code ${code}, signal ${signal})`));
      this.pending.clear();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  run<J extends Job>(job: J): Promise<JobResultMap[J['kind']]> {
    const jobId = this.nextJobId++;
    return new Promise((resolve, reject) => {
      this.pending.set(jobId, { resolve: resolve as (value: unknown) => void, reject });
      this.child.send({ jobId, job } satisfies JobRequest);
    });
  }
}

export function startWorkers(children: Children, count: number): WorkerHandle[] {
  if (!(Number.isInteger(count) && count >= 1 && count <= 8)) throw new RangeError(`workers must be 1..8 (got ${count})`);
  return Array.from({ length: count }, (_, i) => new WorkerHandle(`worker-${i}`, forkWorker(children, `worker-${i}`)));
}

/** Splits items round-robin over n parts. */
export function split<T>(items: T[], n: number): T[][] {
  const parts: T[][] = Array.from({ length: n }, () => []);
  items.forEach((item, i) => parts[i % n]!.push(item));
  return parts;
}
