// A Redis Cluster of a test's own: N masters (no replicas), each a RedisServer (redis-server.ts: Debian's redis-server
// on free loopback ports, its data in a temporary directory, appendonly yes, appendfsync always, no RDB snapshots),
// joined with `redis-cli --cluster create`, ready once every node reports cluster_state:ok. Stopped by PID at dispose().
import { spawn } from 'node:child_process';
import { Cluster, Redis } from 'ioredis';
import { RedisServer } from './redis-server.ts';

export const REDIS_CLI_BIN = process.env['TICKWIRE_REDIS_CLI'] ?? 'redis-cli';
const READY_TIMEOUT_MS = 20_000;

function run(bin: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(output) : reject(new Error(`${bin} ${args.join(' ')} exited with ${code}:\n${output}`))));
  });
}

export class RedisCluster {
  private constructor(readonly nodes: RedisServer[]) {}

  /** Starts `masters` nodes, creates the cluster and waits until every node says cluster_state:ok. */
  static async start(masters = 3): Promise<RedisCluster> {
    const nodes = await Promise.all(Array.from({ length: masters }, () => RedisServer.start({ clusterNode: true })));
    const cluster = new RedisCluster(nodes);
    try {
      await run(REDIS_CLI_BIN, ['--cluster', 'create', ...nodes.map((node) => `127.0.0.1:${node.port}`), '--cluster-replicas', '0', '--cluster-yes']);
      await cluster.waitUntilOk();
      return cluster;
    } catch (error) {
      await cluster.dispose();
      throw error;
    }
  }

  /** The seed nodes as the server takes them: `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...`. */
  get url(): string {
    return `redis+cluster://${this.nodes.map((node) => `127.0.0.1:${node.port}`).join(',')}`;
  }

  private async waitUntilOk(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (const node of this.nodes) {
      const redis = new Redis({ host: '127.0.0.1', port: node.port, lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await redis.connect();
        for (;;) {
          const info = String(await redis.cluster('INFO'));
          if (/^cluster_state:ok\r?$/m.test(info) && /^cluster_known_nodes:(\d+)\r?$/m.exec(info)?.[1] === String(this.nodes.length)) break;
          if (Date.now() > deadline) throw new Error(`node ${node.port} is not ready within ${READY_TIMEOUT_MS} ms:\n${info}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      } finally {
        redis.disconnect();
      }
    }
  }

  /** A cluster client for checks and cleanup (the caller disconnects it). */
  async admin(): Promise<Cluster> {
    const cluster = new Cluster(
      this.nodes.map((node) => ({ host: '127.0.0.1', port: node.port })),
      { lazyConnect: true, redisOptions: { maxRetriesPerRequest: 1 } },
    );
    await cluster.connect();
    return cluster;
  }

  /** Stops every node (SIGKILL, by PID) and removes their directories. */
  /** SIGSTOP every node: the cluster hangs without closing a socket. */
  pause(): void {
    for (const node of this.nodes) node.pause();
  }

  resume(): void {
    for (const node of this.nodes) node.resume();
  }

  async dispose(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.dispose()));
  }
}

/** Empties every master of a cluster (FLUSHALL is per node). */
export async function flushCluster(admin: Cluster): Promise<void> {
  await Promise.all(admin.nodes('master').map((node) => node.flushall()));
}
