// `tickwire load <scenario> [options]`: load against a Tickwire server, through the wire client only, with
// open-loop rates, HDR latency histograms and an account of every message. `tickwire load --worker` is the worker
// process the command forks (load/worker.ts).
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { UsageError, type Command } from '../bin/command.ts';
import { BASELINE_SCENARIOS, runBaselineServer } from './baseline-server.ts';
import { chooseAddresses, isLoopbackHost, MAX_PER_ADDRESS, parseAddressList, PER_ADDRESS, splitAddresses } from './addresses.ts';
import { coordinate } from './coordinator.ts';
import { renderHtml } from './html-report.ts';
import { buildReport, renderText } from './report.ts';
import { runReportCommand } from './report-command.ts';
import { isScenarioName, SCENARIO_NAMES, type RunOptions, type ScenarioName } from './scenario.ts';
import { SCENARIOS } from './scenarios/index.ts';
import { DEFAULT_HTTP_CONNECTIONS, DEFAULT_UPLOAD_RATIO } from './scenarios/prekeys.ts';
import { LOAD_SERVER_ARGS, LoadServer, ServerStartError } from './server-process.ts';
import { ServerSampler } from './server-sampler.ts';
import { runWorkerProcess } from './worker.ts';

/** Sessions one worker process holds at most: a process may have 20,000 open files, one per socket, plus spares. */
export const SESSIONS_PER_WORKER = 15_000;
/** Bounds that keep a mistyped option from running for hours. */
const MAX_COUNT = 1_000_000;
const MAX_DURATION_MS = 3_600_000;

const HELP = `Usage: tickwire load <scenario> [options]
       tickwire load report [--html <file>] <results.json>   (render a saved JSON report again)

Puts load on a Tickwire server through the wire client, at open-loop rates: every action has a send time fixed in
advance, and latency runs from that time (HDR histograms, p50/p90/p99/p99.9/max). Every message carries a unique
id; at the end the run accounts for each: delivered exactly once, in per-pair order, with its delivered receipt
back at the sender. A lost, duplicated or reordered message fails the run.

Scenarios:
${SCENARIO_NAMES.map((n) => `  ${n.padEnd(12)} ${SCENARIOS[n].summary}`).join('\n')}

Target:
  --url <url>              the server, e.g. http://127.0.0.1:8080; without it the reference server is started on a
                           fresh data directory with ${LOAD_SERVER_ARGS.join(' ')}
  --allow-remote           allow a target outside loopback (refused otherwise)
  --target <kind>          tickwire (default): a server speaking the Tickwire protocol; baseline: the bare ws
                           relay (no accounts, no hello, no store; ${BASELINE_SCENARIOS.join(', ')} only), the
                           floor to compare Tickwire figures with; without --url it is started for the run.
                           Run it yourself with: tickwire load --baseline-server [--port N] [--host H]
  --pid <pid>              sample the server's memory and CPU from /proc (the built-in server is sampled anyway)
  --metrics-url <url>      sample them from a Prometheus endpoint instead (e.g. <url>/metrics)

Size and time (every run stops by itself):
  --count <n>              units: sessions (connections), pairs (pairs, offline), senders (fanin), devices whose
                           prekeys are fetched (prekeys, at least 2 per worker); default 100
  --rate <n>               connections per second (connections, default 1000) or messages per second in all
                           (pairs, fanin, offline fill; default 500) or HTTP requests per second (prekeys, 500)
  --duration <time>        the ramp-and-hold or the sending period, e.g. 10s, 500ms, 2m (default 10s)
  --messages <n>           offline: messages queued in all (default 1000)
  --drain-timeout <time>   how long delivery and receipts may take after sending ends (default 30s); prekeys:
                           how far past --duration a slow server may stretch the sending
  --setup-timeout <time>   how long registration and connecting may take (default 120s)
  --body-bytes <n>         envelope body size (default 64, at least 24)
  --max-errors <n>         errors tolerated before the run fails (default 0)
  --upload-ratio <x>       prekeys: the share of requests that upload one-time prekeys, 0..1 (default ${DEFAULT_UPLOAD_RATIO});
                           the rest fetch bundles
  --http-connections <n>   prekeys: autocannon's keep-alive connections per worker (default ${DEFAULT_HTTP_CONNECTIONS})

Scale:
  --workers <n>            worker processes (default: one per ${SESSIONS_PER_WORKER} sessions, at least 1)
  --local-address <list>   source addresses, e.g. 127.0.0.2-127.0.0.50 or a comma list; default for loopback
                           targets: one address per ${PER_ADDRESS} sessions from 127.1.0.1 on, rotated between runs
                           so that TIME_WAIT sockets of the previous run do not slow the next; "none" binds nothing

Output:
  --output <file>          write the JSON report (shape: load/README.md)
  --html <file>            write the self-contained HTML report with charts (opens offline); from a saved
                           JSON report: tickwire load report --html <file> <results.json>
  --quiet                  no progress line

Registration: every session is a fresh user (POST /v1/accounts) from one source address, so start the server
with a raised registrationsPerMinute (reference server: --registrations-per-minute 1000000), or the run waits out
each 429 RATE_LIMITED until --setup-timeout.

Exit codes: 0 the run passed, 1 accounting failed or errors exceeded --max-errors, 2 bad usage or the server is
unreachable.`;

export interface ParsedLoad {
  scenario: ScenarioName;
  url?: string;
  allowRemote: boolean;
  pid?: number;
  metricsUrl?: string;
  options: RunOptions;
  workers?: number;
  localAddresses?: string[] | 'none';
  maxErrors: number;
  output?: string;
  html?: string;
  quiet: boolean;
}

function integer(text: string | undefined, flag: string, min: number, max: number): number {
  if (text === undefined || !/^[0-9]+$/.test(text) || Number(text) < min || Number(text) > max) throw new UsageError(`${flag} needs an integer in ${min}..${max} (got '${text ?? ''}')`);
  return Number(text);
}

/** `10s`, `500ms`, `2m` or a bare number of seconds → milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m)?$/.exec(text);
  if (!match) throw new UsageError(`${flag} needs a time such as 10s, 500ms or 2m (got '${text}')`);
  const value = Number(match[1]) * (match[2] === 'ms' ? 1 : match[2] === 'm' ? 60_000 : 1000);
  if (value > MAX_DURATION_MS) throw new UsageError(`${flag} is at most 1 hour`);
  return Math.round(value);
}

export function parseLoadArgs(args: string[]): ParsedLoad {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        scenario: { type: 'string' },
        url: { type: 'string' },
        'allow-remote': { type: 'boolean' },
        target: { type: 'string' },
        pid: { type: 'string' },
        'metrics-url': { type: 'string' },
        count: { type: 'string' },
        rate: { type: 'string' },
        duration: { type: 'string' },
        messages: { type: 'string' },
        'drain-timeout': { type: 'string' },
        'setup-timeout': { type: 'string' },
        'body-bytes': { type: 'string' },
        'upload-ratio': { type: 'string' },
        'http-connections': { type: 'string' },
        'max-errors': { type: 'string' },
        workers: { type: 'string' },
        'local-address': { type: 'string' },
        output: { type: 'string' },
        html: { type: 'string' },
        quiet: { type: 'boolean' },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const v = parsed.values;
  if (parsed.positionals.length > 1) throw new UsageError(`unexpected argument '${parsed.positionals[1]}'`);
  const name = parsed.positionals[0] ?? v.scenario;
  if (parsed.positionals[0] !== undefined && v.scenario !== undefined && v.scenario !== parsed.positionals[0]) throw new UsageError('the scenario is given twice, differently');
  if (name === undefined) throw new UsageError(`name a scenario (${SCENARIO_NAMES.join(', ')})`);
  if (!isScenarioName(name)) throw new UsageError(`unknown scenario '${name}' (${SCENARIO_NAMES.join(', ')})`);
  let url: string | undefined;
  if (v.url !== undefined) {
    let parsedUrl: URL;
    try {
      parsedUrl = new URL(v.url);
    } catch {
      throw new UsageError(`--url must be an http:// or https:// URL (got '${v.url}')`);
    }
    if (parsedUrl.protocol !== 'http:' && parsedUrl.protocol !== 'https:') throw new UsageError(`--url must be an http:// or https:// URL (got '${v.url}')`);
    if (!isLoopbackHost(parsedUrl.hostname) && !v['allow-remote']) throw new UsageError(`${parsedUrl.hostname} is not a loopback address; a load run against another host needs --allow-remote`);
    url = v.url.replace(/\/+$/, '');
  }
  const target = v.target ?? 'tickwire';
  if (target !== 'tickwire' && target !== 'baseline') throw new UsageError(`--target is tickwire or baseline (got '${target}')`);
  if (target === 'baseline' && !BASELINE_SCENARIOS.includes(name)) throw new UsageError(`the bare ws relay runs ${BASELINE_SCENARIOS.join(', ')} only (it keeps no queue and has no HTTP API)`);
  const options: RunOptions = {
    target,
    count: integer(v.count ?? '100', '--count', 1, MAX_COUNT),
    rate: integer(v.rate ?? (name === 'connections' ? '1000' : '500'), '--rate', 1, 10_000_000),
    durationMs: parseDuration(v.duration ?? '10s', '--duration'),
    messages: integer(v.messages ?? '1000', '--messages', 1, 100_000_000),
    drainTimeoutMs: parseDuration(v['drain-timeout'] ?? '30s', '--drain-timeout'),
    setupTimeoutMs: parseDuration(v['setup-timeout'] ?? '120s', '--setup-timeout'),
    bodyBytes: integer(v['body-bytes'] ?? '64', '--body-bytes', 24, 1_048_576),
  };
  if (name !== 'prekeys' && (v['upload-ratio'] !== undefined || v['http-connections'] !== undefined)) throw new UsageError('--upload-ratio and --http-connections apply to the prekeys scenario only');
  if (name === 'prekeys') {
    const ratio = v['upload-ratio'] ?? String(DEFAULT_UPLOAD_RATIO);
    if (!/^(0(\.[0-9]+)?|1(\.0+)?)$/.test(ratio)) throw new UsageError(`--upload-ratio needs a number in 0..1 (got '${ratio}')`);
    options.uploadRatio = Number(ratio);
    options.httpConnections = integer(v['http-connections'] ?? String(DEFAULT_HTTP_CONNECTIONS), '--http-connections', 1, 10_000);
  }
  let localAddresses: ParsedLoad['localAddresses'];
  if (v['local-address'] === 'none') localAddresses = 'none';
  else if (v['local-address'] !== undefined) {
    try {
      localAddresses = parseAddressList(v['local-address']);
    } catch (error) {
      throw new UsageError(`--local-address: ${(error as Error).message}`);
    }
  }
  const out: ParsedLoad = { scenario: name, allowRemote: Boolean(v['allow-remote']), options, maxErrors: integer(v['max-errors'] ?? '0', '--max-errors', 0, Number.MAX_SAFE_INTEGER), quiet: Boolean(v.quiet) };
  if (url !== undefined) out.url = url;
  if (v.pid !== undefined) out.pid = integer(v.pid, '--pid', 1, 2 ** 22);
  if (v['metrics-url'] !== undefined) out.metricsUrl = v['metrics-url'];
  if (v.workers !== undefined) out.workers = integer(v.workers, '--workers', 1, 1024);
  if (localAddresses !== undefined) out.localAddresses = localAddresses;
  if (v.output !== undefined) out.output = v.output;
  if (v.html !== undefined) out.html = v.html;
  return out;
}

/** GET /healthz answers at all (any status): the server is reachable. */
async function reachable(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) });
    await response.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

async function runLoad(args: string[]): Promise<number> {
  if (args[0] === '--worker') {
    const code = await runWorkerProcess();
    // Idle HTTP keep-alive sockets must not hold the worker open once its result is out.
    setTimeout(() => process.exit(code), 200).unref();
    return code;
  }
  if (args[0] === '--baseline-server') return runBaselineServer(args.slice(1));
  if (args[0] === 'report') return runReportCommand(args.slice(1));
  const parsed = parseLoadArgs(args);
  const scenario = SCENARIOS[parsed.scenario];
  const sessions = parsed.options.count * scenario.sessionsPerUnit + scenario.extraSessions;
  const workers = Math.min(parsed.options.count, Math.max(parsed.workers ?? 1, Math.ceil(sessions / SESSIONS_PER_WORKER)));
  if (parsed.workers === undefined && workers > availableParallelism() * 4) console.error(`tickwire load: ${workers} workers on ${availableParallelism()} cores`);

  let server: LoadServer | undefined;
  let url = parsed.url;
  if (url === undefined) {
    try {
      server = parsed.options.target === 'baseline' ? await LoadServer.startBaseline() : await LoadServer.start();
    } catch (error) {
      if (!(error instanceof ServerStartError)) throw error;
      console.error(`tickwire load: cannot start the ${parsed.options.target === 'baseline' ? 'bare ws relay' : 'reference server'}: ${error.message}`);
      return 2;
    }
    url = server.url;
  }
  try {
    if (!(await reachable(url))) {
      console.error(`tickwire load: ${url} is unreachable (GET /healthz failed)`);
      return 2;
    }
    const loopback = isLoopbackHost(new URL(url).hostname);
    let addresses: string[] = [];
    if (parsed.localAddresses === 'none') addresses = [];
    else if (parsed.localAddresses !== undefined) addresses = chooseAddresses(parsed.localAddresses.length, parsed.localAddresses);
    else if (loopback) addresses = chooseAddresses(Math.ceil(sessions / PER_ADDRESS));
    if (addresses.length > 0 && sessions / addresses.length > MAX_PER_ADDRESS) throw new UsageError(`${sessions} sessions over ${addresses.length} source address(es) is more than ${MAX_PER_ADDRESS} per address`);
    const perWorker = splitAddresses(addresses, workers);
    const pid = parsed.pid ?? server?.pid;
    const sampler = pid !== undefined ? new ServerSampler({ pid }) : parsed.metricsUrl !== undefined ? new ServerSampler({ metricsUrl: parsed.metricsUrl }) : undefined;
    const baseline = await sampler?.sample();
    sampler?.start();
    const run = randomBytes(4).toString('hex');
    const startedAt = new Date();
    const o = parsed.options;
    const hardDeadlineMs = o.setupTimeoutMs * 2 + o.durationMs + (parsed.scenario === 'offline' ? (o.messages / o.rate) * 1000 + o.drainTimeoutMs * 3 : o.drainTimeoutMs) + 30_000;
    const progress = parsed.quiet ? undefined : (line: string) => console.error(line);
    if (!parsed.quiet) console.error(`tickwire load ${parsed.scenario}: ${sessions} session(s) over ${workers} worker(s) and ${addresses.length || 'default'} source address(es) against ${url}${server ? (parsed.options.target === 'baseline' ? ' (built-in bare ws relay)' : ' (built-in reference server)') : parsed.options.target === 'baseline' ? ' (bare ws relay)' : ''}, run ${run}`);
    const outcome = await coordinate({ scenario: parsed.scenario, url, run, workers, addresses: perWorker, options: o, hardDeadlineMs, ...(sampler ? { sampler } : {}), ...(progress ? { onProgress: progress } : {}) });
    sampler?.stop();
    const report = buildReport({
      scenario: parsed.scenario,
      url,
      run,
      startedAt,
      options: o,
      workers,
      maxErrors: parsed.maxErrors,
      localAddresses: perWorker,
      outcome,
      ...(sampler ? { serverSamples: sampler.samples } : {}),
      ...(baseline ? { baselineRssBytes: baseline.rssBytes } : {}),
    });
    if (parsed.output !== undefined) writeFileSync(parsed.output, `${JSON.stringify(report, null, 2)}\n`);
    if (parsed.html !== undefined) writeFileSync(parsed.html, renderHtml(report));
    process.stdout.write(renderText(report));
    if (outcome.fatal.length > 0 && !parsed.quiet) for (const f of outcome.fatal) console.error(f);
    if (outcome.results.length === 0) return 2;
    return report.verdict.pass ? 0 : 1;
  } finally {
    await server?.stop();
  }
}

export const loadCommand: Command = {
  name: 'load',
  summary: 'load a server: sessions, message rates, fan-in, offline drain (open loop, HDR latency, accounting)',
  help: HELP,
  run: runLoad,
};
