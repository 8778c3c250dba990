// The reference server as a service of several processes on Redis, for the conformance suite's own tests: N `serve
// --redis` processes (or one `--workers` primary), and the actions that the suite's --restart-cmd, --graceful-restart-cmd,
// --fault-cmd and --heal-cmd perform on it, behind a loopback HTTP endpoint of the test that the commands call.
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { BUILT_IN_SERVER_ARGS } from '../../conformance/server-process.ts';
import { ServeProcess, tempDir } from '../reference-server/cluster/serve-process.ts';
import type { RedisServer } from '../reference-server/store/redis/redis-server.ts';

/** A deployment of the service: its URLs, and what its restart and fault commands do. */
export interface Deployment {
  urls: string[];
  crash(): Promise<void>;
  graceful(): Promise<void>;
  fault(): Promise<void>;
  heal(): Promise<void>;
  /** The warn and error log lines of every process so far, restarts included, as JSON text (for failure messages). */
  warnings(): string[];
}

export type Teardown = Parameters<typeof ServeProcess.start>[0];

/** The pids whose parent is `pid` (from /proc; the workers of a --workers primary). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // /proc/PID/stat: "pid (comm) state ppid …"; comm may hold spaces and parentheses, so split after the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function gone(pids: number[]): Promise<void> {
  for (let i = 0; pids.some(alive); i++) {
    if (i > 600) throw new Error(`processes ${pids.filter(alive).join(', ')} still alive after 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * `count` processes of `serve ARGS --port P` on Redis; crash() SIGKILLs every one (and, for a --workers primary, its
 * workers: the primary first, so that it forks no replacement) and starts them again on the same ports.
 */
export async function deploy(t: Teardown, redis: RedisServer, count: number, extra: string[]): Promise<Deployment> {
  const args = (port: string) => ['--port', port, '--redis', redis.url, '--data-dir', tempDir(t), '--log-level', 'warn', ...BUILT_IN_SERVER_ARGS, ...extra];
  let processes = await Promise.all(Array.from({ length: count }, () => ServeProcess.start(t, args('0'))));
  const everyProcess = [...processes];
  const urls = processes.map((p) => p.url);
  const ports = urls.map((url) => new URL(url).port);
  const start = async () => {
    processes = await Promise.all(ports.map((port) => ServeProcess.start(t, args(port))));
    everyProcess.push(...processes);
    const now = processes.map((p) => p.url);
    if (now.join() !== urls.join()) throw new Error(`restarted on ${now.join(', ')}, not ${urls.join(', ')}`);
  };
  return {
    urls,
    async crash() {
      const pids = processes.flatMap((p) => [p.pid, ...childrenOf(p.pid)]);
      for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
      await Promise.all(processes.map((p) => p.exited));
      await gone(pids);
      await start();
    },
    async graceful() {
      const pids = processes.flatMap((p) => [p.pid, ...childrenOf(p.pid)]);
      await Promise.all(processes.map((p) => p.stop()));
      await gone(pids);
      await start();
    },
    async fault() {
      redis.pause();
    },
    async heal() {
      redis.resume();
    },
    warnings() {
      return everyProcess.flatMap((p) => p.logs().filter((line) => line.level !== 'info' && line.level !== 'debug').map((line) => JSON.stringify(line)));
    },
  };
}

/** An HTTP endpoint on loopback that runs a deployment's actions: POST /crash, /graceful, /fault, /heal. */
export async function control(t: Teardown, deployment: Deployment): Promise<string> {
  const actions: Record<string, () => Promise<void>> = { '/crash': deployment.crash, '/graceful': deployment.graceful, '/fault': deployment.fault, '/heal': deployment.heal };
  const server: Server = createServer((request, response) => {
    const action = actions[request.url ?? ''];
    if (request.method !== 'POST' || !action) return void response.writeHead(404).end();
    action().then(
      () => response.writeHead(200).end(),
      (error: unknown) => response.writeHead(500).end(String((error as Error).stack ?? error)),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
}

/** A shell command that POSTs to `url` and exits 0 only on a 200 (with Node, which the suite needs anyway). */
export function post(url: string): string {
  const script = `fetch('${url}',{method:'POST'}).then(async(r)=>{if(r.status!==200){console.error(await r.text());process.exit(1)}},(e)=>{console.error(e);process.exit(1)})`;
  return `'${process.execPath}' -e "${script}"`;
}

