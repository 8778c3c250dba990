// A client worker of the server benchmark: a child process (forked by bench/server.ts) that runs the client side of
// the scenarios, so that client CPU is measured apart from the orchestrator and can be spread over two processes.
// It takes jobs over IPC (bench/lib/jobs.ts), one at a time, and keeps its connections between jobs.
import { drain, fill } from './clients/backlog.ts';
import { SessionsClient } from './clients/sessions.ts';
import { ThroughputClient } from './clients/throughput.ts';
import type { Job, JobReply, JobRequest } from './lib/jobs.ts';

if (!process.send) {
  console.error('bench/worker.ts runs as a child of bench/server.ts (it needs an IPC channel)');
  process.exit(2);
}

const throughput = new ThroughputClient();
const sessions = new SessionsClient();

async function runJob(job: Job): Promise<unknown> {
  switch (job.kind) {
    case 'throughput-setup':
      return throughput.setup(job);
    case 'throughput-run':
      return throughput.run(job);
    case 'open-sessions':
      return sessions.open(job);
    case 'close-all':
      return { closed: sessions.closeAll() + (await throughput.close()) };
    case 'fill':
      return fill(job);
    case 'drain':
      return drain(job);
  }
}

process.on('message', (message: JobRequest) => {
  runJob(message.job).then(
    (result) => process.send!({ jobId: message.jobId, ok: true, result } satisfies JobReply),
    (error: unknown) => process.send!({ jobId: message.jobId, ok: false, error: (error as Error).stack ?? String(error) } satisfies JobReply),
  );
});
// The parent going away ends the worker; its sockets close with it.
process.on('disconnect', () => process.exit(0));
