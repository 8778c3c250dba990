// A redis-server of the benchmark's own: Debian's redis-server (or $TICKWIRE_REDIS_SERVER) on a free loopback
// port, its data in a temporary directory, append-only with an fsync on every write (the setting that keeps the
// spec's promise, reference-server/README.md "Redis store"), no RDB snapshots. Registered with the benchmark's
// children, so that it is stopped by its PID when the benchmark ends; INFO is read over a plain RESP socket.
import { spawn } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { BenchError, type Children, type Exit } from './children.ts';

export const REDIS_SERVER_BIN = process.env['TICKWIRE_REDIS_SERVER'] ?? 'redis-server';
const READY_TIMEOUT_MS = 20_000;

export interface RedisProcess {
  name: string;
  pid: number;
  port: number;
  url: string;
  dir: string;
  /** The command line it was started with. */
  command: string;
  exited: Promise<Exit>;
}

/** A free TCP port on 127.0.0.1, picked by the kernel from its ephemeral range (never 6379). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

async function launch(children: Children, name: string, dir: string, port: number, appendfsync: string): Promise<RedisProcess> {
  const args = ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--appendonly', 'yes', '--appendfsync', appendfsync, '--save', '', '--daemonize', 'no', '--protected-mode', 'yes', '--loglevel', 'notice', '--logfile', ''];
  const child = spawn(REDIS_SERVER_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = children.track(name, child);
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new BenchError('TIMEOUT', `${name} did not start within ${READY_TIMEOUT_MS} ms\n${output}`));
    }, READY_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-4000);
      if (/Ready to accept connections/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((exit) => {
      clearTimeout(timer);
      reject(new BenchError('SERVER_EXIT', `${name} exited (code ${exit.code}, signal ${exit.signal}) before it was ready\n${output}`));
    });
  });
  // Keep draining its output (notices and warnings) so that a full pipe never blocks it.
  child.stdout!.resume();
  child.stderr!.resume();
  return { name, pid: child.pid!, port, url: `redis://127.0.0.1:${port}`, dir, command: `${REDIS_SERVER_BIN} ${args.map((a) => (a === '' ? "''" : a)).join(' ')}`, exited };
}

/** Starts redis-server in `dir` on a free loopback port (a few attempts: the port may be taken meanwhile). */
export async function startRedis(children: Children, name: string, dir: string, appendfsync: 'always' | 'everysec' = 'always'): Promise<RedisProcess> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await launch(children, name, dir, await freePort(), appendfsync);
    } catch (error) {
      // Only an early exit (the port was taken between the probe and the bind) is worth another port.
      if (attempt >= 4 || !(error instanceof BenchError) || error.code !== 'SERVER_EXIT') throw error;
    }
  }
}

/** `INFO [section]` of the Redis at 127.0.0.1:`port` as key → value (RESP over a plain socket). */
export function redisInfo(port: number, section = 'everything', timeoutMs = 5000): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`INFO on port ${port}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('connect', () => socket.write(`*2\r\n$4\r\nINFO\r\n$${Buffer.byteLength(section)}\r\n${section}\r\n`));
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const header = data.indexOf('\r\n');
      if (header < 0) return;
      const line = data.subarray(0, header).toString('utf8');
      if (!line.startsWith('$')) {
        clearTimeout(timer);
        socket.destroy();
        reject(new Error(`INFO on port ${port}: ${line}`));
        return;
      }
      const length = Number(line.slice(1));
      if (data.length < header + 2 + length) return;
      clearTimeout(timer);
      socket.destroy();
      const out: Record<string, string> = {};
      for (const entry of data.subarray(header + 2, header + 2 + length).toString('utf8').split('\r\n')) {
        const colon = entry.indexOf(':');
        if (colon > 0 && !entry.startsWith('#')) out[entry.slice(0, colon)] = entry.slice(colon + 1);
      }
      resolve(out);
    });
  });
}
