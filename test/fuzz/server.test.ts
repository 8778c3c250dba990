// The server fuzzer (fuzz/, `tickwire fuzz`): a bounded campaign against the reference server finds nothing and
// exercises every input class; the regression corpus replays clean; and the oracles do fail, with a shrunk corpus
// file that --replay reproduces, against a deliberately wrong server (a proxy in front of the reference server that
// renames one error code to one the registry does not have).
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer } from 'ws';
import { listCorpus, loadCorpusFile } from '../../fuzz/corpus.ts';
import { INPUT_CLASSES } from '../../fuzz/input.ts';
import { replayFile } from '../../fuzz/replay.ts';
import type { Summary } from '../../fuzz/runner.ts';
import { ReferenceServer } from '../../fuzz/server-process.ts';
import { showFinding } from '../../fuzz/oracles/finding.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin/tickwire.js');
const CORPUS = join(ROOT, 'fuzz/corpus/server');
/** The bounded campaign of npm test: a fixed seed and a count that fits the time budget. */
const SEED = '20261127';
const ITERATIONS = '20000';

// A 20,000-input campaign, a broken server with shrinking and replays, and the corpus: ~46 s on a quiet machine,
// over the default file timeout when other jobs share the 2 cores.
t.setTimeout(600_000);

function tickwire(args: string[], timeoutMs = 300_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

t.test('a bounded campaign against the reference server: no oracle fails, every class runs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tickwire-fuzz-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const started = performance.now();
  const result = await tickwire(['fuzz', '--seed', SEED, '--iterations', ITERATIONS, '--concurrency', '4', '--corpus', join(dir, 'corpus'), '--json', join(dir, 'summary.json')]);
  t.equal(result.code, 0, `exit code 0\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-2000)}`);
  t.match(result.stdout, new RegExp(`seed ${SEED}`), 'the run prints its seed');
  const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as Summary;
  t.equal(summary.inputs, Number(ITERATIONS));
  t.same(summary.failures.map((f) => showFinding(f.finding)), [], 'no oracle failed');
  for (const c of INPUT_CLASSES) t.ok((summary.perClass[c] ?? 0) > 0, `class ${c} was exercised`);
  // The answers cover the main paths: schema errors, fatal closes, successes, HTTP refusals and the upgrade.
  for (const label of ['error:INVALID_FRAME', 'error:UNKNOWN_FRAME_TYPE', 'error:MALFORMED_FRAME', 'close:4400', 'close:1003', 'close:1007', 'close:1002', 'close:1009', 'error:AUTH_FAILED', 'error:UNAUTHENTICATED', 'send_ok', 'pong', 'welcome', 'http:400:BAD_REQUEST', 'http:401:UNAUTHORIZED', 'http:404:NOT_FOUND', 'http:405:METHOD_NOT_ALLOWED', 'http:101']) {
    t.ok((summary.answers[label] ?? 0) > 0, `answers include ${label}`);
  }
  t.ok(summary.memory.enabled && summary.memory.samples > 0, 'the memory oracle watched the server by pid');
  t.equal(readdirSync(dir).includes('corpus'), false, 'nothing was saved');
  t.comment(`${summary.inputs} inputs in ${(summary.durationMs / 1000).toFixed(1)} s (${summary.inputsPerSecond}/s); the whole run took ${((performance.now() - started) / 1000).toFixed(1)} s`);
});

t.test('the regression corpus replays clean against the reference server', async (t) => {
  const files = listCorpus(CORPUS);
  t.ok(files.length > 0, 'fuzz/corpus/server holds regression inputs');
  const server = await ReferenceServer.start(['--registrations-per-minute', '100000']);
  t.teardown(() => server.stop());
  for (const path of files) {
    const file = loadCorpusFile(path);
    t.ok(file.note, `${path} says what it found and how it was fixed`);
    const { findings } = await replayFile(server.url, file);
    t.same(findings.map(showFinding), [], `${path.slice(CORPUS.length + 1)} passes`);
  }
});

/**
 * A deliberately wrong server: a proxy in front of the reference server that forwards HTTP and WebSocket traffic
 * unchanged, except that every INVALID_FRAME error it passes on is renamed to a code spec/errors.json does not know.
 */
async function brokenProxy(upstream: string): Promise<{ url: string; close: () => Promise<void> }> {
  const target = new URL(upstream);
  const server: Server = createServer((req, res) => {
    const forward = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer: IncomingMessage) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => (protocols.has('tickwire.v1') ? 'tickwire.v1' : false) });
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (client) => {
      const up = new WebSocket(`ws://${target.host}/v1/ws`, 'tickwire.v1');
      const queue: Array<[Buffer, boolean]> = [];
      client.on('message', (data: Buffer, binary) => (up.readyState === WebSocket.OPEN ? up.send(data, { binary }) : queue.push([data, binary])));
      up.on('open', () => {
        for (const [data, binary] of queue.splice(0)) up.send(data, { binary });
      });
      up.on('message', (data: Buffer, binary) => client.send(binary ? data : data.toString('utf8').replace('"code":"INVALID_FRAME"', '"code":"NOT_IN_THE_REGISTRY"'), { binary }));
      up.on('close', (code, reason) => (code >= 1000 && code !== 1005 && code !== 1006 ? client.close(code, reason) : client.terminate()));
      client.on('close', () => up.terminate());
      up.on('error', () => client.terminate());
      client.on('error', () => up.terminate());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

t.test('the oracles fail against a wrong server: exit 1, a shrunk corpus file, and --replay reproduces it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tickwire-fuzz-broken-'));
  const server = await ReferenceServer.start(['--registrations-per-minute', '100000']);
  const proxy = await brokenProxy(server.url);
  t.teardown(async () => {
    await proxy.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const corpus = join(dir, 'corpus');
  const run = await tickwire(['fuzz', '--url', proxy.url, '--seed', '7', '--iterations', '400', '--classes', 'frame', '--concurrency', '2', '--batch', '200', '--corpus', corpus, '--shrink-trials', '150']);
  t.equal(run.code, 1, `exit code 1 when an oracle fails\n${run.stdout.slice(-2000)}`);
  t.match(run.stdout, /NOT_IN_THE_REGISTRY is not in spec\/errors\.json/, 'the registry check names the unknown code');
  t.match(run.stdout, /seed 7, input \d+/, 'every failure prints the seed and the input');
  const files = listCorpus(corpus);
  t.ok(files.length >= 1, 'the failing input was saved');
  const file = loadCorpusFile(files[0]!);
  t.equal(file.seed, 7);
  t.equal(file.inputs.length, 1);
  t.equal(file.inputs[0]!.steps.length, 1, 'shrunk to one step');
  t.ok(JSON.stringify(file.inputs[0]!.steps).length < 120, `shrunk to a small frame: ${JSON.stringify(file.inputs[0]!.steps)}`);
  t.ok(file.shrunk && file.shrunk.to.bytes <= file.shrunk.from.bytes, 'the file records the shrinking');
  const replayed = await tickwire(['fuzz', '--replay', files[0]!, '--url', proxy.url]);
  t.equal(replayed.code, 1, `--replay reproduces the failure\n${replayed.stdout.slice(-1500)}`);
  t.match(replayed.stdout, /NOT_IN_THE_REGISTRY/);
  const clean = await tickwire(['fuzz', '--replay', files[0]!, '--url', server.url]);
  t.equal(clean.code, 0, `the same file passes against the reference server itself\n${clean.stdout.slice(-1500)}`);
});

t.test('usage and connection errors exit with 2', async (t) => {
  const bad = await tickwire(['fuzz', '--iterations', 'many']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--iterations needs a positive integer/);
  const unknown = await tickwire(['fuzz', '--classes', 'frames']);
  t.equal(unknown.code, 2);
  const unreachable = await tickwire(['fuzz', '--url', 'http://127.0.0.1:9', '--iterations', '10']);
  t.equal(unreachable.code, 2, unreachable.stderr);
  t.match(unreachable.stderr, /cannot reach/);
  const missing = await tickwire(['fuzz', '--replay', join(tmpdir(), 'no-such-corpus-file.json')]);
  t.equal(missing.code, 2);
});
