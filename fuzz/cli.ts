// `tickwire fuzz`: fuzzes a Tickwire server as a black box (HTTP, WebSocket and raw TCP), or, without --url, the
// reference server started as a child process; `tickwire fuzz --replay FILE` replays one saved input.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { UsageError, type Command } from '../bin/command.ts';
import { CorpusError, loadCorpusFile } from './corpus.ts';
import { INPUT_CLASSES, describeStep, type InputClass } from './input.ts';
import { showFinding } from './oracles/finding.ts';
import { replayFile } from './replay.ts';
import { randomSeed } from './random.ts';
import { runCampaign, type Summary } from './runner.ts';
import { ReferenceServer, ServerStartError, FUZZ_SERVER_ARGS } from './server-process.ts';
import { SetupError } from './world.ts';

/** Relative weights of the input classes: most inputs are frames on a session, the cheapest and deepest kind. */
export const DEFAULT_WEIGHTS: Record<InputClass, number> = { frame: 60, sequence: 10, fatal: 6, preauth: 6, handshake: 3, http: 13, tcp: 2 };

const HELP = `Usage: tickwire fuzz [options]
       tickwire fuzz --replay FILE [--url <url>]

Fuzzes a Tickwire server as a black box. Generators that know the protocol start from valid frames and HTTP bodies
built from the spec's schemas and examples and mutate them (dropped and repeated members, wrong types, numbers out of
range, huge, empty and odd Unicode strings, invalid base64, deep nesting, __proto__ and constructor keys, the ids of
other users and devices, frames out of sequence and before authentication), next to raw garbage: random bytes,
invalid UTF-8, binary, fragmented and oversized messages, forbidden WebSocket frames, torn handshakes, slow writers
and connections that never read. Input classes: ${INPUT_CLASSES.join(', ')}.

Every answer is checked as it comes (a spec error code with its close code or HTTP status, valid against the
schemas, the answer the spec gives that input); after each batch the server must still answer /healthz, carry a
fresh session end to end, hold a victim user's messages untouched, and (with --pid or --metrics-url) keep its
memory bounded. Each distinct failure is shrunk to a minimal input and saved as a replayable file.

Without --url the fuzzer starts the reference server itself (node bin/tickwire.js serve --port 0 on a fresh data
directory, with ${FUZZ_SERVER_ARGS.join(' ')}) and watches its memory by pid.

Server:
  --url <url>              the server under test, e.g. http://127.0.0.1:8080
  --pid <pid>              watch the server's resident memory in /proc/<pid>/status
  --metrics-url <url>      or read it from a Prometheus gauge ending in process_resident_memory_bytes
  --memory-limit-mb <n>    growth over the warm-up peak that fails the run when it persists (default 256)

Campaign:
  --seed <n>               run seed, 0..4294967295 (default random; always printed)
  --iterations <n>         inputs to send (default 10000; with --duration alone, unlimited)
  --from <index>           start at this input index of the seed's sequence (default 0), to re-run the part of a
                           long campaign around a failure on a fresh server
  --duration <t>           stop after this long: 90, 90s, 500ms or 10m (default: no limit)
  --concurrency <n>        lanes, each with its own session and connections (default 4)
  --batch <n>              inputs between two runs of the batch oracles (default 1000)
  --classes <list>         only these input classes, comma-separated
  --timeout <ms>           how long an answer may take (default 10000)
  --settle <ms>            how long to wait for an answer that may not come (default 25)

Failures:
  --corpus <dir>           where failing inputs are saved (default ./fuzz-findings)
  --no-shrink              save failing inputs as found
  --shrink-trials <n>      replays spent shrinking one failure (default 300)
  --replay <file>          replay one saved input and run the oracles on it; exit 1 if it still fails
  --json <file>            also write the summary as JSON

Exit codes: 0 no oracle failed, 1 an oracle failed, 2 bad arguments or the server could not be reached.`;

interface Parsed {
  url?: string;
  pid?: number;
  metricsUrl?: string;
  memoryLimitMb: number;
  seed: number;
  iterations?: number;
  from?: number;
  durationMs?: number;
  concurrency: number;
  batch: number;
  classes: InputClass[];
  timeoutMs: number;
  settleMs: number;
  corpus: string;
  shrink: boolean;
  shrinkTrials: number;
  replay?: string;
  json?: string;
}

function positiveInt(text: string, flag: string): number {
  if (!/^[1-9][0-9]*$/.test(text) || !Number.isSafeInteger(Number(text))) throw new UsageError(`${flag} needs a positive integer (got '${text}')`);
  return Number(text);
}

function nonNegativeInt(text: string, flag: string): number {
  if (!/^(0|[1-9][0-9]*)$/.test(text) || !Number.isSafeInteger(Number(text))) throw new UsageError(`${flag} needs an integer of 0 or more (got '${text}')`);
  return Number(text);
}

function duration(text: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?$/.exec(text);
  if (!match) throw new UsageError(`--duration needs a time such as 90, 90s, 500ms or 10m (got '${text}')`);
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? 's'] ?? 1000;
  const ms = Number(match[1]) * factor;
  if (ms <= 0) throw new UsageError('--duration must be above zero');
  return ms;
}

export function parseArgs(args: string[]): Parsed {
  const parsed: Parsed = { memoryLimitMb: 256, seed: randomSeed(), concurrency: 4, batch: 1000, classes: [...INPUT_CLASSES], timeoutMs: 10_000, settleMs: 25, corpus: 'fuzz-findings', shrink: true, shrinkTrials: 300 };
  const seen = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    if (!flag.startsWith('--')) throw new UsageError(`unexpected argument '${arg}'`);
    if (seen.has(flag)) throw new UsageError(`${flag} is given more than once`);
    seen.add(flag);
    const value = (): string => {
      if (eq > 0) return arg.slice(eq + 1);
      const next = args[++i];
      if (next === undefined || next.startsWith('--')) throw new UsageError(`${flag} needs a value`);
      return next;
    };
    switch (flag) {
      case '--url': {
        const url = value();
        if (!/^https?:\/\/[^/]+/.test(url)) throw new UsageError(`--url must be an http:// or https:// URL (got '${url}')`);
        parsed.url = url.replace(/\/+$/, '');
        break;
      }
      case '--pid': parsed.pid = positiveInt(value(), flag); break;
      case '--metrics-url': {
        const url = value();
        if (!/^https?:\/\/[^/]+/.test(url)) throw new UsageError(`--metrics-url must be an http:// or https:// URL (got '${url}')`);
        parsed.metricsUrl = url;
        break;
      }
      case '--memory-limit-mb': parsed.memoryLimitMb = positiveInt(value(), flag); break;
      case '--seed': {
        const text = value();
        if (!/^[0-9]+$/.test(text) || Number(text) > 0xffffffff) throw new UsageError(`--seed needs an integer 0..4294967295 (got '${text}')`);
        parsed.seed = Number(text);
        break;
      }
      case '--iterations': parsed.iterations = positiveInt(value(), flag); break;
      case '--from': parsed.from = nonNegativeInt(value(), flag); break;
      case '--duration': parsed.durationMs = duration(value()); break;
      case '--concurrency': parsed.concurrency = positiveInt(value(), flag); break;
      case '--batch': parsed.batch = positiveInt(value(), flag); break;
      case '--classes': {
        const list = value().split(',').map((c) => c.trim()).filter(Boolean);
        for (const c of list) if (!INPUT_CLASSES.includes(c as InputClass)) throw new UsageError(`unknown input class '${c}' (${INPUT_CLASSES.join(', ')})`);
        if (list.length === 0) throw new UsageError('--classes needs at least one class');
        parsed.classes = list as InputClass[];
        break;
      }
      case '--timeout': parsed.timeoutMs = positiveInt(value(), flag); break;
      case '--settle': parsed.settleMs = positiveInt(value(), flag); break;
      case '--corpus': parsed.corpus = value(); break;
      case '--no-shrink': parsed.shrink = false; break;
      case '--shrink-trials': parsed.shrinkTrials = positiveInt(value(), flag); break;
      case '--replay': parsed.replay = value(); break;
      case '--json': parsed.json = value(); break;
      default:
        throw new UsageError(`unknown option ${arg}`);
    }
  }
  if (parsed.pid !== undefined && parsed.metricsUrl !== undefined) throw new UsageError('--pid and --metrics-url are alternatives; give one');
  if (parsed.pid !== undefined && parsed.url === undefined) throw new UsageError('--pid needs --url (the built-in server is watched by its own pid)');
  if (parsed.concurrency > 64) throw new UsageError('--concurrency is at most 64');
  return parsed;
}

const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;

export function renderSummary(summary: Summary): string {
  const lines: string[] = [];
  lines.push(`tickwire fuzz summary (seed ${summary.seed})`);
  lines.push(`  inputs: ${summary.inputs} in ${(summary.durationMs / 1000).toFixed(1)} s = ${summary.inputsPerSecond} inputs/s, ${summary.batches} batches, ${summary.sessionsReopened} sessions reopened`);
  lines.push(`  inputs per class: ${Object.entries(summary.perClass).map(([c, n]) => `${c} ${n}`).join(', ')}`);
  const answers = Object.entries(summary.answers).sort((a, b) => b[1] - a[1]);
  lines.push('  answers:');
  for (const [label, n] of answers) lines.push(`    ${label.padEnd(40)} ${n}`);
  if (summary.memory.enabled) {
    lines.push(`  memory: warm-up peak ${mb(summary.memory.baselineBytes)}, peak ${mb(summary.memory.peakBytes)} over ${summary.memory.samples} samples${summary.memory.problem ? ` (sampling stopped: ${summary.memory.problem})` : ''}`);
  } else lines.push('  memory: not watched (give --pid or --metrics-url)');
  const stalls = summary.fuzzerStalls;
  if (stalls.stalls > 0) lines.push(`  this process stalled ${stalls.stalls} times (${(stalls.totalMs / 1000).toFixed(1)} s in all, longest ${stalls.longestMs} ms); deadlines did not count those times`);
  if (summary.aborted) lines.push(`  stopped early: ${summary.aborted}`);
  if (summary.failures.length === 0) lines.push('  failures: none');
  else {
    lines.push(`  failures: ${summary.failures.length} distinct`);
    for (const f of summary.failures) {
      lines.push(`  - ${f.count}× ${f.finding.oracle} [${f.finding.requirement}] ${f.finding.subject !== undefined ? `${f.finding.subject}: ` : ''}${f.finding.summary}${f.also.length > 0 ? ` (and ${f.also.length} more finding${f.also.length === 1 ? '' : 's'} on the same input)` : ''}`);
      lines.push(`      first at input ${f.index} (${f.inputClass}: ${f.title.slice(0, 100)})`);
      if (f.finding.expected !== undefined) lines.push(`      expected: ${f.finding.expected}`);
      if (f.finding.actual !== undefined) lines.push(`      actual:   ${f.finding.actual}`);
      if (f.shrunk) lines.push(`      shrunk from ${f.shrunk.from.steps} steps/${f.shrunk.from.bytes} bytes to ${f.shrunk.to.steps}/${f.shrunk.to.bytes} in ${f.shrunk.trials} replays`);
      else if (f.reproduced === false) lines.push('      did not reproduce on its own (saved as found)');
      if (f.file) lines.push(`      saved: ${f.file} (replay: tickwire fuzz --replay ${f.file})`);
    }
  }
  return `${lines.join('\n')}\n`;
}

async function startBuiltIn(): Promise<ReferenceServer | number> {
  try {
    return await ReferenceServer.start();
  } catch (error) {
    if (!(error instanceof ServerStartError)) throw error;
    console.error(`tickwire fuzz: cannot start the reference server: ${error.message}`);
    return 2;
  }
}

async function replay(parsed: Parsed): Promise<number> {
  let file;
  try {
    file = loadCorpusFile(parsed.replay!);
  } catch (error) {
    if (error instanceof CorpusError) throw new UsageError(error.message);
    throw error;
  }
  const server = parsed.url === undefined ? await startBuiltIn() : undefined;
  if (typeof server === 'number') return server;
  const url = parsed.url ?? server!.url;
  console.log(`tickwire fuzz: replaying ${parsed.replay} (${file.inputs.length} input${file.inputs.length === 1 ? '' : 's'}; found with seed ${file.seed ?? 'n/a'}, input ${file.index ?? 'n/a'}) against ${url}`);
  try {
    const { findings } = await replayFile(url, file, {
      settleMs: parsed.settleMs,
      timeoutMs: parsed.timeoutMs,
      log: (line) => console.log(line),
      onRun: (run) => {
        console.log(`  ${run.input.class}: ${run.input.title}`);
        for (const step of run.input.steps) console.log(`    ${describeStep(step)}`);
        console.log(`    answers: ${run.answers.join(', ') || '(none)'}`);
      },
    });
    if (findings.length === 0) {
      console.log('no oracle failed');
      return 0;
    }
    for (const f of findings) console.log(`FAILURE: ${showFinding(f)}`);
    return 1;
  } catch (error) {
    if (error instanceof SetupError) {
      console.error(`tickwire fuzz: ${error.message}`);
      return 2;
    }
    throw error;
  } finally {
    if (server) await server.stop();
  }
}

async function runFuzz(args: string[]): Promise<number> {
  const parsed = parseArgs(args);
  if (parsed.replay !== undefined) return replay(parsed);
  const server = parsed.url === undefined ? await startBuiltIn() : undefined;
  if (typeof server === 'number') return server;
  const url = parsed.url ?? server!.url;
  const iterations = parsed.iterations ?? (parsed.durationMs !== undefined ? Number.MAX_SAFE_INTEGER : 10_000);
  const weights = Object.fromEntries(INPUT_CLASSES.map((c) => [c, parsed.classes.includes(c) ? DEFAULT_WEIGHTS[c] : 0])) as Record<InputClass, number>;
  const bound = [parsed.iterations !== undefined || parsed.durationMs === undefined ? `${iterations} inputs` : '', parsed.durationMs !== undefined ? `${parsed.durationMs / 1000} s` : ''].filter(Boolean).join(' or ');
  console.log(`tickwire fuzz: seed ${parsed.seed}, ${bound}, ${parsed.concurrency} lanes, against ${url}${server ? ` (built-in reference server, pid ${server.pid})` : ''}`);
  const pid = parsed.pid ?? server?.pid;
  let lastProgress = performance.now();
  try {
    const summary = await runCampaign({
      url,
      seed: parsed.seed,
      iterations,
      ...(parsed.from !== undefined ? { firstIndex: parsed.from } : {}),
      durationMs: parsed.durationMs ?? Number.POSITIVE_INFINITY,
      concurrency: parsed.concurrency,
      batchSize: parsed.batch,
      settleMs: parsed.settleMs,
      timeoutMs: parsed.timeoutMs,
      maxInFlight: 64,
      weights,
      memory: { ...(pid !== undefined ? { pid } : {}), ...(parsed.metricsUrl !== undefined ? { metricsUrl: parsed.metricsUrl } : {}), limitBytes: parsed.memoryLimitMb * 1048576, warmup: 3, sustain: 3 },
      corpusDir: parsed.corpus,
      shrink: parsed.shrink ? { trials: parsed.shrinkTrials, ms: 120_000 } : undefined,
      ...(server
        ? {
            restart: async () => {
              await server.restart();
              return { url: server.url, pid: server.pid };
            },
          }
        : {}),
      maxFailures: 50,
      log: (line) => console.log(line),
      progress: (done, elapsed) => {
        if (performance.now() - lastProgress < 5000) return;
        lastProgress = performance.now();
        console.log(`  ${done} inputs, ${Math.round((done / elapsed) * 1000)}/s`);
      },
    });
    process.stdout.write(renderSummary(summary));
    if (parsed.json) {
      mkdirSync(dirname(parsed.json), { recursive: true });
      writeFileSync(parsed.json, `${JSON.stringify(summary, null, 2)}\n`);
    }
    return summary.failures.length > 0 ? 1 : 0;
  } catch (error) {
    if (error instanceof SetupError) {
      console.error(`tickwire fuzz: ${error.message}`);
      return 2;
    }
    throw error;
  } finally {
    if (server) await server.stop();
  }
}

export const fuzzCommand: Command = {
  name: 'fuzz',
  summary: 'fuzz a server with mutated frames, requests and raw garbage (default: the reference server)',
  help: HELP,
  run: runFuzz,
};
