// `tickwire conformance`: runs the black-box conformance suite against a server URL, or, without --url, against the
// reference server started as a child process on a fresh temporary data directory.
import { writeFileSync } from 'node:fs';
import { UsageError, type Command } from '../bin/command.ts';
import { cases as allCases } from './cases/index.ts';
import type { Faulter, Restarter } from './context.ts';
import { randomSeed } from './fixtures.ts';
import { isReporterName, REPORTERS, type ReporterName } from './reporters/index.ts';
import { progressLine, renderTerminal } from './reporters/terminal.ts';
import { run, select, type Selection } from './runner.ts';
import { BUILT_IN_SERVER_ARGS, CommandFaulter, CommandRestarter, ReferenceServer, ServerStartError } from './server-process.ts';

const HELP = `Usage: tickwire conformance [options]

Runs the conformance suite against a Tickwire server as a black box, over HTTP and WebSocket only. Each case checks
requirement IDs of spec/PROTOCOL.md; MUST-level cases decide the exit code, SHOULD-level cases fail the run only with
--strict. Without --url the suite starts the reference server itself (node bin/tickwire.js serve --port 0 on a fresh
temporary data directory, with ${BUILT_IN_SERVER_ARGS.join(' ')}) and stops it afterwards.

Server:
  --url <url>              the server under test, e.g. http://127.0.0.1:8080 (the WebSocket is <url>/v1/ws);
                           repeat it for a service of several processes or hosts sharing one store (PROTOCOL.md 6.6):
                           each case then opens its connections and sends its HTTP requests to the URLs in turn,
                           from a starting point that --seed fixes, so that its users talk across processes
  --restart-cmd <cmd>      shell command that crashes and restarts the server under test, keeping its data (kill -9
                           is the honest test of durability); the cases that need it check that nothing ACKed is
                           lost and are NOT-RUN without it (the built-in reference server is killed with SIGKILL)
  --graceful-restart-cmd <cmd>
                           shell command that stops the server deliberately (as for a deploy) and starts it again;
                           the cases of KAL-13 need it (the built-in reference server is sent SIGTERM)
  --fault-cmd <cmd>        shell command that makes the server's storage fail without stopping it (for example
                           pausing its database); with --heal-cmd, which undoes it, the cases of MSG-18 check that
                           no send is ACKed while storage is down (the built-in server: prlimit cuts its file size
                           limit to one byte)
  --heal-cmd <cmd>         shell command that undoes --fault-cmd
  --ready-url <url>        polled after either restart command until it answers 200 (default <url>/healthz of
                           every --url); repeatable

Selection:
  --grep <regex>           run cases whose id or title matches (repeatable)
  --section <n>            run cases of a spec section: 4 selects 4.x, 4.6 selects 4.6 (repeatable, or a comma list)
  --requirement <ID>       run cases citing a requirement, e.g. DLV-12 (repeatable, or a comma list)
  --exclude <regex>        leave out cases whose id or title matches (repeatable)
  --list                   print the selected cases (id, level, requirements, title) and exit

Running:
  --concurrency <n>        cases run at once (default 4)
  --timeout <ms>           time limit per case (default 10000); a case over it FAILS, a dead server ends the run
  --strict                 SHOULD-level failures fail the run (otherwise they are reported as NON-STRICT)
  --seed <n>               seed for keys, secrets, ids and bodies (default random, printed in the report)
  --model-runs <n>         scenarios the model-based delivery cases (4.5/model-…) generate from --seed and check
                           (default 10; the variant with restarts runs a quarter of them); more runs, more effort

Reports:
  --reporter <name>        terminal (default), tap, junit, json or html; repeatable or a comma list; NAME=FILE
                           writes that reporter to FILE
  --output <file>          write the (only) non-terminal reporter to <file>; the terminal summary still prints

Verdicts: OK, FAILED, NON-STRICT (a SHOULD case failed without --strict), UNSUPPORTED (the case needs something the
server does not advertise), NOT-RUN (the suite cannot run it here; the reason is given).

Registration: every case registers fresh users (POST /v1/accounts, POST /v1/devices), about 150 per run. Start the
server under test with a raised registrationsPerMinute (reference server: --registrations-per-minute 100000), or
the suite waits out each 429 RATE_LIMITED and the run takes much longer.

Exit codes: 0 every required case passed, 1 a required case failed, 2 bad arguments or the server is unreachable.`;

interface Parsed {
  /** Every --url, in order (empty: the built-in reference server). */
  urls: string[];
  restartCmd?: string;
  gracefulRestartCmd?: string;
  faultCmd?: string;
  healCmd?: string;
  readyUrls: string[];
  selection: Selection;
  list: boolean;
  concurrency: number;
  timeoutMs: number;
  strict: boolean;
  seed: number;
  modelRuns?: number;
  reporters: Array<{ name: ReporterName; file?: string }>;
  output?: string;
}

function positiveInt(text: string | undefined, flag: string): number {
  if (text === undefined || !/^[1-9][0-9]*$/.test(text) || !Number.isSafeInteger(Number(text))) throw new UsageError(`${flag} needs a positive integer (got '${text ?? ''}')`);
  return Number(text);
}

export function parseArgs(args: string[]): Parsed {
  const parsed: Parsed = { urls: [], readyUrls: [], selection: {}, list: false, concurrency: 4, timeoutMs: 10_000, strict: false, seed: randomSeed(), reporters: [] };
  const push = (key: keyof Selection, value: string, split: boolean) => {
    const values = split ? value.split(',').map((v) => v.trim()).filter(Boolean) : [value];
    (parsed.selection[key] ??= []).push(...values);
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      if (eq > 0) return arg.slice(eq + 1);
      const next = args[++i];
      if (next === undefined) throw new UsageError(`${flag} needs a value`);
      return next;
    };
    switch (flag) {
      case '--url': {
        const url = value();
        if (!/^https?:\/\/[^/]+/.test(url)) throw new UsageError(`--url must be an http:// or https:// URL (got '${url}')`);
        parsed.urls.push(url.replace(/\/+$/, ''));
        break;
      }
      case '--restart-cmd': parsed.restartCmd = value(); break;
      case '--graceful-restart-cmd': parsed.gracefulRestartCmd = value(); break;
      case '--fault-cmd': parsed.faultCmd = value(); break;
      case '--heal-cmd': parsed.healCmd = value(); break;
      case '--ready-url': parsed.readyUrls.push(value()); break;
      case '--grep': push('grep', value(), false); break;
      case '--exclude': push('exclude', value(), false); break;
      case '--section': push('section', value(), true); break;
      case '--requirement': push('requirement', value(), true); break;
      case '--list': parsed.list = true; break;
      case '--strict': parsed.strict = true; break;
      case '--concurrency': parsed.concurrency = positiveInt(value(), '--concurrency'); break;
      case '--timeout': parsed.timeoutMs = positiveInt(value(), '--timeout'); break;
      case '--model-runs': parsed.modelRuns = positiveInt(value(), '--model-runs'); break;
      case '--seed': {
        const text = value();
        if (!/^[0-9]+$/.test(text) || Number(text) > 0xffffffff) throw new UsageError(`--seed needs an integer 0..4294967295 (got '${text}')`);
        parsed.seed = Number(text);
        break;
      }
      case '--reporter':
        for (const item of value().split(',').map((v) => v.trim()).filter(Boolean)) {
          const [name, file] = item.split('=', 2) as [string, string | undefined];
          if (!isReporterName(name)) throw new UsageError(`unknown reporter '${name}' (terminal, tap, junit, json, html)`);
          parsed.reporters.push(file ? { name, file } : { name });
        }
        break;
      case '--output': parsed.output = value(); break;
      default:
        throw new UsageError(`unknown option ${arg}`);
    }
  }
  const restartCmd = parsed.restartCmd !== undefined || parsed.gracefulRestartCmd !== undefined;
  if (parsed.readyUrls.length > 0 && !restartCmd) throw new UsageError('--ready-url goes with --restart-cmd or --graceful-restart-cmd');
  if (restartCmd && parsed.urls.length === 0) throw new UsageError('--restart-cmd and --graceful-restart-cmd need --url (the built-in server restarts itself)');
  if ((parsed.faultCmd === undefined) !== (parsed.healCmd === undefined)) throw new UsageError('--fault-cmd and --heal-cmd go together');
  if (parsed.faultCmd !== undefined && parsed.urls.length === 0) throw new UsageError('--fault-cmd needs --url (the built-in server is faulted with prlimit)');
  for (const id of parsed.selection.requirement ?? []) if (!/^[A-Z]{2,4}-[1-9][0-9]*$/.test(id)) throw new UsageError(`--requirement '${id}' is not a requirement ID such as DLV-12`);
  if (parsed.reporters.length === 0) parsed.reporters.push({ name: 'terminal' });
  if (parsed.output !== undefined) {
    const open = parsed.reporters.filter((r) => r.name !== 'terminal' && r.file === undefined);
    if (open.length !== 1) throw new UsageError('--output needs exactly one non-terminal --reporter without its own =FILE');
    open[0]!.file = parsed.output;
    if (!parsed.reporters.some((r) => r.name === 'terminal')) parsed.reporters.push({ name: 'terminal' });
  }
  const toStdout = parsed.reporters.filter((r) => r.file === undefined);
  if (toStdout.length > 1) throw new UsageError(`only one reporter can write to stdout (${toStdout.map((r) => r.name).join(', ')}); give the others =FILE`);
  return parsed;
}

function listCases(parsed: Parsed): number {
  const selected = select(allCases, parsed.selection);
  for (const c of selected) {
    const needs = c.needs?.length ? ` needs:${c.needs.join(',')}` : '';
    console.log(`${c.id.padEnd(58)} ${c.level.padEnd(6)} ${c.requirements.join(',').padEnd(30)} ${c.title}${needs}`);
  }
  console.log(`${selected.length} of ${allCases.length} cases`);
  return 0;
}

async function runConformance(args: string[]): Promise<number> {
  const parsed = parseArgs(args);
  if (parsed.list) return listCases(parsed);
  const selected = select(allCases, parsed.selection);
  if (selected.length === 0) throw new UsageError('the selection matches no case (see --list)');

  let server: ReferenceServer | undefined;
  let url = parsed.urls[0];
  let restarter: Restarter | undefined;
  let faulter: Faulter | undefined;
  if (url === undefined) {
    try {
      server = await ReferenceServer.start();
    } catch (error) {
      if (!(error instanceof ServerStartError)) throw error;
      console.error(`tickwire conformance: cannot start the reference server: ${error.message}`);
      return 2;
    }
    url = server.url;
    restarter = server;
    if (await ReferenceServer.canFault()) faulter = server;
  } else if (parsed.restartCmd !== undefined || parsed.gracefulRestartCmd !== undefined) {
    const commands = { ...(parsed.restartCmd !== undefined ? { crash: parsed.restartCmd } : {}), ...(parsed.gracefulRestartCmd !== undefined ? { graceful: parsed.gracefulRestartCmd } : {}) };
    restarter = new CommandRestarter(commands, parsed.readyUrls.length > 0 ? parsed.readyUrls : parsed.urls.map((u) => `${u}/healthz`));
  }
  if (parsed.faultCmd !== undefined && parsed.healCmd !== undefined) faulter = new CommandFaulter(parsed.faultCmd, parsed.healCmd);

  const terminalToStdout = parsed.reporters.some((r) => r.name === 'terminal' && r.file === undefined);
  const color = Boolean(process.stdout.isTTY) && !process.env['NO_COLOR'];
  try {
    const against = parsed.urls.length > 1 ? `one service at ${parsed.urls.join(', ')}` : url;
    if (terminalToStdout) console.log(`tickwire conformance: ${selected.length} cases against ${against}${server ? ' (built-in reference server)' : ''}, seed ${parsed.seed}`);
    const report = await run(selected, {
      url,
      ...(parsed.urls.length > 1 ? { urls: parsed.urls } : {}),
      concurrency: parsed.concurrency,
      timeoutMs: parsed.timeoutMs,
      strict: parsed.strict,
      seed: parsed.seed,
      ...(parsed.modelRuns !== undefined ? { modelRuns: parsed.modelRuns } : {}),
      ...(restarter ? { restarter } : {}),
      ...(faulter ? { faulter } : {}),
      ...(terminalToStdout ? { onResult: (result, done, total) => console.log(progressLine(result, done, total, { color })) } : {}),
    });
    if (report.aborted && report.summary.OK === 0 && report.results.every((r) => r.verdict === 'NOT-RUN')) {
      console.error(`tickwire conformance: ${report.aborted}`);
    }
    for (const reporter of parsed.reporters) {
      const text = reporter.name === 'terminal' ? renderTerminal(report, { color: color && reporter.file === undefined }) : REPORTERS[reporter.name](report);
      if (reporter.file === undefined) process.stdout.write(text);
      else writeFileSync(reporter.file, text);
    }
    if (report.aborted && server) console.error(`reference server log tail:\n${server.logTail}`);
    return report.exitCode;
  } finally {
    await server?.stop();
  }
}

export const conformanceCommand: Command = {
  name: 'conformance',
  summary: 'run the conformance suite against a server (default: the reference server)',
  help: HELP,
  run: runConformance,
};
