// `tickwire serve`: runs the reference server until SIGTERM or SIGINT. Every limit of spec/limits.json has a flag
// (`--max-frame-bytes 131072`) and an environment variable (`TICKWIRE_MAX_FRAME_BYTES=131072`); flags win.
import { parseValueFlags, UsageError, type Command } from '../bin/command.ts';
import { limits as limitSpecs, type LimitName } from '../spec/index.ts';
import {
  configProblems,
  DEFAULT_USERNAME_LOOKUPS_PER_MINUTE,
  defaultConfig,
  limitEnv,
  limitFlag,
  type LogLevel,
  type ServerConfig,
} from './config.ts';
import { isMutantName, MUTANT_NAMES, MUTANTS } from './mutants.ts';
import { DEFAULT_FREE_AUTH_FAILURES, DELAY_STEP_MS, MAX_DELAY_MS } from './auth-throttle.ts';
import cluster from 'node:cluster';
import type { ListeningMessage } from './cluster/primary.ts';

const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

interface Option {
  flag: string;
  value: string;
  help: string;
}

const SERVER_OPTIONS: Option[] = [
  { flag: 'port', value: '<n>', help: 'TCP port; 0 picks a free one (default 8080)' },
  { flag: 'host', value: '<addr>', help: 'address to listen on (default 127.0.0.1; plaintext only on loopback, TRN-38)' },
  { flag: 'data-dir', value: '<dir>', help: 'directory of the durable log (default ./data)' },
  {
    flag: 'redis',
    value: '<url>',
    help: 'keep all state in Redis (redis://host:port), or in a Redis Cluster named by seed nodes (redis+cluster://host1:port1,host2:port2), instead of --data-dir; see README "Redis store"',
  },
  {
    flag: 'workers',
    value: '<n>',
    help: 'run n worker processes on the one port (above 1 needs --redis); SIGHUP restarts them one at a time',
  },
  { flag: 'lease-ttl-ms', value: '<ms>', help: 'with --redis: how long a crashed process still counts in the service (default 10000)' },
  { flag: 'tls-cert', value: '<file>', help: 'PEM certificate chain; with --tls-key serves https and wss' },
  { flag: 'tls-key', value: '<file>', help: 'PEM private key for --tls-cert' },
  { flag: 'log-level', value: '<level>', help: 'debug, info, warn, error or silent (default info); logs go to stderr' },
  { flag: 'shutdown-grace-ms', value: '<ms>', help: 'how long a shutdown waits for in-flight requests (default 5000)' },
  {
    flag: 'username-lookups-per-minute',
    value: '<n>',
    help: `GET /v1/usernames/{username} per device per 60 s, SEC-6 (default ${DEFAULT_USERNAME_LOOKUPS_PER_MINUTE})`,
  },
  {
    flag: 'auth-failures-per-minute',
    value: '<n>',
    help: `failed authentications per source address per 60 s answered at once; each further one ${DELAY_STEP_MS} ms later than the last, up to ${MAX_DELAY_MS} ms, SEC-8 (default ${DEFAULT_FREE_AUTH_FAILURES})`,
  },
];

/** Not a server option: switches on one deliberately broken variant, so the conformance suite can be tested. */
const TEST_MUTANT_FLAG = 'test-mutant';

function helpText(): string {
  const limitLines = limitSpecs.map((spec) => {
    const range = spec.maximum === undefined ? `>= ${spec.minimum}` : `${spec.minimum}..${spec.maximum}`;
    return `  --${limitFlag(spec.name)} <n>`.padEnd(36) + `${spec.unit}; default ${spec.default}, allowed ${range} (${limitEnv(spec.name)})`;
  });
  return [
    'Usage: tickwire serve [options]',
    '',
    'Runs the Tickwire reference server: the HTTP API under /v1/, the WebSocket at /v1/ws, GET /healthz and',
    'GET /metrics (Prometheus text). Prints "tickwire serving on <url> (pid <pid>)" on stdout once it accepts connections.',
    'SIGTERM or SIGINT closes every session with SERVER_RESTART (1012), lets requests finish and exits 0.',
    '',
    'With --workers N (and --redis) a primary process runs N workers on the one port and prints the ready line, with',
    'its own pid, once all of them listen. It restarts a worker that dies, passes SIGTERM and SIGINT on to every',
    'worker and exits when they have, and on SIGHUP replaces the workers one at a time: each replacement listens',
    'before the worker it replaces shuts down, so the service keeps accepting connections (PROTOCOL.md 6.6).',
    '',
    'Server options:',
    ...SERVER_OPTIONS.map((o) => `  --${o.flag} ${o.value}`.padEnd(36) + o.help),
    '',
    'Limits (spec/limits.json, PROTOCOL.md section 6.5). Each can also be set by the environment variable shown;',
    'a flag wins over the variable. The server refuses to start with values outside the allowed range or breaking',
    'the relations of LIM-3.',
    ...limitLines,
    '',
    'For testing the conformance suite only (never in a deployment): a deliberately broken server.',
    `  --${TEST_MUTANT_FLAG} <name>`.padEnd(36) + 'plant the bug <name> (reference-server/mutants.ts); a warning goes to stderr',
    ...MUTANTS.map((m) => `    ${m.name}`.padEnd(36) + m.bug),
    '',
    'Exit codes: 0 after a graceful shutdown, 2 bad options or the server could not start.',
  ].join('\n');
}

function parseFlags(args: string[]): Map<string, string> {
  return parseValueFlags(args, new Set([...SERVER_OPTIONS.map((o) => o.flag), ...limitSpecs.map((s) => limitFlag(s.name)), TEST_MUTANT_FLAG]));
}

function integer(text: string, what: string): number {
  if (!/^(0|[1-9][0-9]*)$/.test(text.trim()) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`${what} must be a non-negative integer (got '${text}')`);
  }
  return Number(text);
}

/** Builds the configuration from flags and environment; throws UsageError listing every problem. */
export function configFromArgs(args: string[], env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const flags = parseFlags(args);
  const config = defaultConfig();
  if (flags.has('port')) config.port = integer(flags.get('port')!, '--port');
  if (flags.has('host')) config.host = flags.get('host')!;
  if (flags.has('data-dir')) config.dataDir = flags.get('data-dir')!;
  if (flags.has('redis')) config.redisUrl = flags.get('redis')!;
  if (flags.has('workers')) config.workers = integer(flags.get('workers')!, '--workers');
  if (flags.has('lease-ttl-ms')) config.leaseTtlMs = integer(flags.get('lease-ttl-ms')!, '--lease-ttl-ms');
  if (flags.has('shutdown-grace-ms')) config.shutdownGraceMs = integer(flags.get('shutdown-grace-ms')!, '--shutdown-grace-ms');
  if (flags.has('username-lookups-per-minute')) {
    config.usernameLookupsPerMinute = integer(flags.get('username-lookups-per-minute')!, '--username-lookups-per-minute');
  }
  if (flags.has('auth-failures-per-minute')) {
    const text = flags.get('auth-failures-per-minute')!;
    config.authFailuresPerMinute = text === '0' ? 0 : integer(text, '--auth-failures-per-minute');
  }
  if (flags.has('log-level')) {
    const level = flags.get('log-level') as LogLevel;
    if (!LOG_LEVELS.includes(level)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
    config.logLevel = level;
  }
  const mutant = flags.get(TEST_MUTANT_FLAG);
  if (mutant !== undefined) {
    if (!isMutantName(mutant)) throw new UsageError(`--${TEST_MUTANT_FLAG}: unknown mutant '${mutant}' (${MUTANT_NAMES.join(', ')})`);
    config.testMutant = mutant;
  }
  const cert = flags.get('tls-cert');
  const key = flags.get('tls-key');
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  if (cert !== undefined && key !== undefined) config.tls = { certFile: cert, keyFile: key };
  for (const spec of limitSpecs) {
    const name: LimitName = spec.name;
    const fromFlag = flags.get(limitFlag(name));
    const fromEnv = env[limitEnv(name)];
    if (fromFlag !== undefined) config.limits[name] = integer(fromFlag, `--${limitFlag(name)}`);
    else if (fromEnv !== undefined && fromEnv !== '') config.limits[name] = integer(fromEnv, limitEnv(name));
  }
  const problems = configProblems(config);
  if (problems.length > 0) throw new UsageError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  return config;
}

async function serve(args: string[]): Promise<number> {
  const config = configFromArgs(args);
  const worker = cluster.isWorker;
  if (config.testMutant !== undefined && !worker) {
    const bug = MUTANTS.find((m) => m.name === config.testMutant)!.bug;
    console.error(
      [
        '!'.repeat(100),
        `!!! WARNING: TEST MUTANT '${config.testMutant}' IS ON. This server is broken on purpose, for testing the`,
        `!!! conformance suite only: ${bug}.`,
        '!!! Never use it for anything else.',
        '!'.repeat(100),
      ].join('\n'),
    );
  }
  // --workers: this process is the primary of Node's cluster module and serves nothing itself (cluster/primary.ts).
  // `--workers 1` without Redis is the plain single process.
  if (config.workers !== undefined && !worker && !(config.workers === 1 && config.redisUrl === undefined)) {
    const [{ Primary }, { createLogger }] = await Promise.all([import('./cluster/primary.ts'), import('./logger.ts')]);
    const primary = new Primary({ workers: config.workers, host: config.host, port: config.port, shutdownGraceMs: config.shutdownGraceMs, log: createLogger(config.logLevel) });
    return primary.run();
  }
  if (worker) {
    // The one port of the service, chosen by the primary (also when --port is 0).
    const { WORKER_PORT_ENV } = await import('./cluster/primary.ts');
    const port = process.env[WORKER_PORT_ENV];
    if (port !== undefined) config.port = Number(port);
  }
  // Loaded only when serving, so that the other commands do not pay for the server's modules.
  const { ConfigError, startServer } = await import('./server.ts');
  let server;
  try {
    server = await startServer(config);
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    const err = error as NodeJS.ErrnoException;
    console.error(`tickwire serve: cannot start: ${err.code ? `${err.code}: ` : ''}${err.message}`);
    return 2;
  }
  const running = server;
  // A write past the file size limit (RLIMIT_FSIZE) must fail that write with EFBIG, which the store reports as
  // TEMPORARILY_UNAVAILABLE [MSG-18], never kill the process. Node ignores SIGXFSZ, but a wrapper that listens for
  // every signal (signal-exit, as test runners use) re-raises it unless someone else listens too.
  process.on('SIGXFSZ', () => running.ctx.log.warn('server.file_size_limit', { signal: 'SIGXFSZ' }));
  // A primary that died (SIGKILL) takes the shared port with it: shut down as if it had sent SIGTERM.
  const onPrimaryGone = () => process.kill(process.pid, 'SIGTERM');
  if (worker) {
    // The primary prints the service's ready line once every worker listens; SIGHUP is the primary's (rolling
    // restart) and must not end a worker that got it too (a terminal hangup reaches the whole process group).
    const listening: ListeningMessage = { type: 'tickwire:listening', url: running.url };
    process.send?.(listening);
    process.on('SIGHUP', () => running.ctx.log.debug('server.signal_ignored', { signal: 'SIGHUP' }));
    process.once('disconnect', onPrimaryGone);
  } else {
    console.log(`tickwire serving on ${running.url} (pid ${process.pid})`);
  }
  return new Promise<number>((done) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      // A worker gets the primary's SIGTERM right after a terminal's SIGINT: the shutdown under way must finish.
      if (worker) for (const name of ['SIGTERM', 'SIGINT'] as const) process.on(name, () => undefined);
      running.ctx.log.info('server.signal', { signal });
      running
        .close()
        .then(() => {
          // The IPC channel to the primary would keep a worker's event loop alive until the fallback below: let go.
          if (worker && process.connected) {
            process.off('disconnect', onPrimaryGone);
            process.disconnect();
          }
          done(0);
        })
        .catch((error: unknown) => {
          console.error(`tickwire serve: shutdown failed: ${(error as Error).message}`);
          done(1);
        });
      // A handle that something forgot to release must not keep a stopped server alive; unref'd, this fires only
      // if the process would otherwise hang.
      setTimeout(() => {
        running.ctx.log.warn('server.forced_exit', { afterMs: config.shutdownGraceMs + 5000, note: 'a handle kept the stopped server alive' });
        process.exit(process.exitCode ?? 0);
      }, config.shutdownGraceMs + 5000).unref();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

export const serveCommand: Command = {
  name: 'serve',
  summary: 'run the reference server (HTTP API, WebSocket, /healthz, /metrics)',
  help: helpText(),
  run: serve,
};
