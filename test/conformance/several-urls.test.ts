// `--url A --url B`: a case spreads its WebSocket connections and HTTP requests over the URLs of one service in turn,
// from a starting URL fixed by the seed and the case; with one URL nothing changes. Against two fake servers
// (test/conformance/fake-server.ts), which register users and welcome any hello. The whole suite against a real
// service of several processes is test/conformance/cluster.slow.ts.
import t from 'tap';
import { parseArgs } from '../../conformance/cli.ts';
import { CaseContext, type SuiteEnv } from '../../conformance/context.ts';
import { caseSeed } from '../../conformance/fixtures.ts';
import { CommandRestarter } from '../../conformance/server-process.ts';
import { run, select } from '../../conformance/runner.ts';
import { cases } from '../../conformance/cases/index.ts';
import { startFakeServer } from './fake-server.ts';

const CASE = '9.9/some-case';

/** Registers two users and connects each, through a fresh context; returns where each request and session went. */
async function spread(env: SuiteEnv, caseId = CASE): Promise<{ http: string[]; ws: string[]; transcript: string }> {
  const ctx = new CaseContext(env, caseId, 5000);
  const alice = await ctx.user();
  const bob = await ctx.user();
  const sessions = [await ctx.connect(alice.devices[0]!), await ctx.connect(bob.devices[0]!)];
  const ws = sessions.map((s) => `http://${new URL(s.conn.socket.url).host}`);
  await ctx.cleanup();
  const lines = ctx.transcript.sorted();
  const http = lines.filter((l) => l.channel === 'http' && l.direction === 'sent').map((l) => String((l.data as { request: string }).request));
  // The shape of the transcript, channel by channel: usernames, ids and times differ from context to context, and
  // so does the interleaving of the two connections.
  const shape = (data: unknown) => (typeof data === 'string' ? data : typeof data === 'object' && data !== null ? ((data as { request?: string; type?: string }).request ?? (data as { type?: string }).type) : data);
  const byChannel = [...lines].sort((x, y) => x.channel.localeCompare(y.channel));
  return { http, ws, transcript: JSON.stringify(byChannel.map((l) => [l.channel, l.direction, shape(l.data)])) };
}

t.test('each connection and request of a case goes to the next URL, from a start the seed fixes', async (t) => {
  const [a, b] = await Promise.all([startFakeServer(), startFakeServer()]);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const urls = [a.url, b.url];
  const env = (seed: number): SuiteEnv => ({ url: a.url, urls, seed, rateLimitWaitMs: 0 });

  const seed = 7;
  const first = caseSeed(seed, CASE) % 2;
  const got = await spread(env(seed));
  // Requests and connections share one rotation: register, register, then the two connections.
  t.same(got.http, [`POST ${urls[first]}/v1/accounts`, `POST ${urls[1 - first]}/v1/accounts`], 'the registrations alternate, with the URL in the transcript');
  t.same(got.ws, [urls[first], urls[1 - first]], 'so do the connections: sender and recipient on different URLs');
  t.match(got.transcript, `open on ${urls[first]}`, 'each connection notes its URL');
  const again = await spread(env(seed));
  t.same([again.http, again.ws], [got.http, got.ws], 'the same seed spreads alike');
  const starts = new Set<string>();
  for (let s = 0; s < 8; s++) starts.add((await spread(env(s))).ws[0]!);
  t.equal(starts.size, 2, 'other seeds start at either URL');

  const single = await spread({ url: a.url, seed, rateLimitWaitMs: 0 });
  t.same(single.http, ['POST /v1/accounts', 'POST /v1/accounts'], 'one URL: transcripts as before');
  t.same(single.ws, [a.url, a.url]);
  t.notMatch(single.transcript, 'open on', 'one URL: no URL in the notes');
  const listed = await spread({ url: a.url, urls: [a.url], seed, rateLimitWaitMs: 0 });
  t.same([listed.http, listed.transcript], [single.http, single.transcript], 'a one-element urls is one URL');
});

t.test('the CLI takes several --url and --ready-url; the run checks and reports every URL', async (t) => {
  const parsed = parseArgs(['--url', 'http://127.0.0.1:1/', '--url', 'http://127.0.0.1:2', '--restart-cmd', 'true', '--ready-url', 'http://127.0.0.1:1/up', '--ready-url', 'http://127.0.0.1:2/up']);
  t.same(parsed.urls, ['http://127.0.0.1:1', 'http://127.0.0.1:2']);
  t.same(parsed.readyUrls, ['http://127.0.0.1:1/up', 'http://127.0.0.1:2/up']);
  t.same(parseArgs([]).urls, [], 'no --url: the built-in server');
  t.throws(() => new CommandRestarter({ crash: 'true' }, []), RangeError, 'a restarter needs a ready URL');

  const fake = await startFakeServer();
  t.teardown(() => fake.close());
  const picked = select(cases, { grep: ['^4.2/send-ok-and-online-push$'] });
  const options = { concurrency: 1, timeoutMs: 1500, seed: 1, strict: false };
  const one = await run(picked, { url: fake.url, ...options });
  t.notOk('urls' in one, 'one URL: no urls member in the report');
  const dead = 'http://127.0.0.1:1';
  const two = await run(picked, { url: fake.url, urls: [fake.url, dead], ...options });
  t.same(two.urls, [fake.url, dead], 'the report lists every URL');
  t.equal(two.exitCode, 2);
  t.equal(two.aborted, `server at ${dead} is unreachable`, 'any URL unreachable ends the run');
  await t.rejects(run(picked, { url: fake.url, urls: [dead, fake.url], ...options }), RangeError, 'urls must start with url');
});
