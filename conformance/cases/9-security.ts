// Sections 9.3, 9.5 and 9.6 of PROTOCOL.md: the SHOULDs that slow down an attacker. A per-device limit on username
// lookups (SEC-6), slower answers to repeated failed authentications from one address (SEC-8), and failed
// authentications that take about as long whether or not the named user and device exist (SEC-9). Timings are
// compared as medians of few samples, interleaved where they are compared with each other, with generous bounds:
// these cases look for differences of tens of milliseconds, not for constant time.
import type { Credentials } from '../../reference-client/wire/connection.ts';
import type { HttpResult } from '../../reference-client/wire/http.ts';
import type { ConformanceCase } from '../case.ts';
import type { CaseContext } from '../context.ts';
import { httpErrorOf, must } from '../expect.ts';

/**
 * Lookups one device makes at most before SEC-6 counts as not met: a limit of more than 1000 lookups a minute per
 * device does little to slow down mass resolution (the reference server allows 120).
 */
const MAX_LOOKUP_PROBE = 1000;
/** Failed authentications per series of the SEC-8 case. */
const FAILED_ATTEMPTS = 40;
/** An answer this slow to a failed authentication is taken as evidence of a delay at once. */
const EVIDENT_DELAY_MS = 250;
/** How much slower the last failed attempts must be than successful ones (SEC-8). */
const MIN_DELAY_MS = 50;
/** Rounds of the SEC-9 timing comparison; each round times every variant once. */
const TIMING_ROUNDS = 9;
/** SEC-9: medians may differ by this much, or by half the larger one, whichever is more. */
const TIMING_TOLERANCE_MS = 10;
/** Fewer rounds than this say nothing about timing. */
const MIN_TIMING_ROUNDS = 3;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

const ms = (value: number) => Math.round(value * 10) / 10;

/** Times one authenticated HTTP request (GET /v1/devices). */
async function timed(ctx: CaseContext, credentials: Credentials): Promise<{ ms: number; result: HttpResult }> {
  const start = performance.now();
  const result = await ctx.http('listDevices', { credentials });
  return { ms: performance.now() - start, result };
}

/** Times one `hello` on a fresh connection, from sending it to its answer. */
async function timedHello(ctx: CaseContext, credentials: Credentials): Promise<{ ms: number; code: string }> {
  const session = await ctx.open({ label: 'attempt' });
  const start = performance.now();
  const answer = await session.hello(credentials, { id: 'h-timed' });
  const elapsed = performance.now() - start;
  session.terminate();
  return { ms: elapsed, code: answer.type === 'error' ? answer.code : answer.type };
}

export const cases: ConformanceCase[] = [
  {
    id: '9.3/username-lookups-rate-limited',
    requirements: ['SEC-6', 'ERR-4'],
    level: 'should',
    title: 'a device resolving usernames in bulk is refused with 429 RATE_LIMITED, with retryAfterMs and Retry-After; other devices are not',
    async run(ctx) {
      const looker = (await ctx.user()).devices[0]!;
      const other = (await ctx.user()).devices[0]!;
      const target = await ctx.user();
      let refused: HttpResult | undefined;
      let lookups = 0;
      while (!refused && lookups < MAX_LOOKUP_PROBE) {
        const result = await ctx.http('lookupUser', { params: { username: target.username }, credentials: looker });
        lookups++;
        if (result.status === 429) refused = result;
        else must.status(result, 200, 'IDN-31', `lookup ${lookups}`);
      }
      ctx.note(refused ? `lookup ${lookups} was refused` : `${lookups} lookups, none refused`);
      if (!refused) return must.fail('SEC-6', `429 RATE_LIMITED within ${MAX_LOOKUP_PROBE} lookups by one device`, `${lookups} lookups answered 200`);
      must.httpError(refused, 429, 'RATE_LIMITED', 'SEC-6', `lookup ${lookups}`);
      const retryAfterMs = httpErrorOf(refused)?.retryAfterMs;
      must.hold(typeof retryAfterMs === 'number' && Number.isInteger(retryAfterMs) && retryAfterMs >= 1, 'ERR-4', 'retryAfterMs, an integer of at least 1', refused.body);
      must.equal(refused.headers.get('retry-after'), String(Math.ceil((retryAfterMs as number) / 1000)), 'ERR-4', 'Retry-After of the 429');
      must.status(await ctx.http('lookupUser', { params: { username: target.username }, credentials: other }), 200, 'SEC-6', 'a lookup by another device right after (the limit is per requesting device)');
    },
  },
  {
    id: '9.5/failed-authentications-slowed-down',
    requirements: ['SEC-8', 'AUT-7', 'AUT-12'],
    level: 'should',
    title: 'repeated failed authentications from one address, on HTTP and in hello, are answered more slowly, with the same errors',
    async run(ctx) {
      const user = await ctx.user();
      const device = user.devices[0]!;
      const wrong = { ...device, secret: ctx.material.secret() };
      // Successful attempts first, for the time an answer takes without any delay.
      const http: number[] = [];
      const hello: number[] = [];
      for (let i = 0; i < 5; i++) {
        const ok = await timed(ctx, device);
        must.status(ok.result, 200, 'AUT-6', 'a request with correct credentials');
        http.push(ok.ms);
        const welcome = await timedHello(ctx, device);
        must.equal(welcome.code, 'welcome', 'AUT-13', 'a hello with correct credentials');
        hello.push(welcome.ms);
      }
      const series: Array<[string, number, () => Promise<number>]> = [
        ['HTTP', median(http), async () => {
          const attempt = await timed(ctx, wrong);
          must.httpError(attempt.result, 401, 'UNAUTHORIZED', 'AUT-7', 'a failed attempt, delayed or not');
          return attempt.ms;
        }],
        ['hello', median(hello), async () => {
          const attempt = await timedHello(ctx, wrong);
          must.equal(attempt.code, 'AUTH_FAILED', 'AUT-12', 'a failed hello, delayed or not');
          return attempt.ms;
        }],
      ];
      const outcomes: Array<{ what: string; baseline: number; late: number; attempts: number }> = [];
      for (const [what, baseline, attempt] of series) {
        const times: number[] = [];
        while (times.length < FAILED_ATTEMPTS && ctx.remaining() > 2 * EVIDENT_DELAY_MS + 1000) {
          times.push(await attempt());
          if (times.at(-1)! >= EVIDENT_DELAY_MS) break;
        }
        const late = times.at(-1)! >= EVIDENT_DELAY_MS ? times.at(-1)! : median(times.slice(-5));
        ctx.note(`${what}: ${times.length} failed attempts, the last ones answered in ${ms(late)} ms; successful ones in ${ms(baseline)} ms`);
        outcomes.push({ what, baseline, late, attempts: times.length });
      }
      for (const { what, baseline, late, attempts } of outcomes) {
        must.hold(late >= baseline + MIN_DELAY_MS, 'SEC-8', `failed ${what} attempts answered at least ${MIN_DELAY_MS} ms slower than successful ones after ${attempts} failures`, `${ms(late)} ms against ${ms(baseline)} ms`);
      }
    },
  },
  {
    id: '9.6/failed-authentication-timing',
    requirements: ['SEC-9', 'AUT-7'],
    level: 'should',
    title: 'a failed authentication takes about as long for an unknown user or device as for a wrong secret',
    async run(ctx) {
      const user = await ctx.user();
      const device = user.devices[0]!;
      const secret = ctx.material.secret();
      const variants: Array<[string, Credentials]> = [
        ['a wrong secret', { userId: device.userId, deviceId: device.deviceId, secret }],
        ['an unknown device', { userId: device.userId, deviceId: 2147483647, secret }],
        ['an unknown user', { userId: `u${device.userId}`.slice(0, 64), deviceId: device.deviceId, secret }],
      ];
      const samples = variants.map(() => [] as number[]);
      // A server following SEC-8 may be holding back failed answers to this address (other cases fail on purpose
      // too), by as much as it likes: take as many rounds as the case budget allows, rotating the order so that a
      // delay that grows attempt by attempt weighs on every variant alike.
      let rounds = 0;
      for (let lastRoundMs = 0; rounds < TIMING_ROUNDS && ctx.remaining() > 2 * lastRoundMs + 500; rounds++) {
        const started = performance.now();
        for (let k = 0; k < variants.length; k++) {
          const i = (rounds + k) % variants.length;
          const [what, credentials] = variants[i]!;
          const attempt = await timed(ctx, credentials);
          must.httpError(attempt.result, 401, 'UNAUTHORIZED', 'AUT-7', what);
          samples[i]!.push(attempt.ms);
        }
        lastRoundMs = performance.now() - started;
      }
      if (rounds < MIN_TIMING_ROUNDS) ctx.unsupported(`failed authentications took too long to time ${MIN_TIMING_ROUNDS} rounds within the case budget (the server may be delaying them, SEC-8)`);
      const medians = samples.map(median);
      ctx.note(variants.map(([what], i) => `${what}: median ${ms(medians[i]!)} ms`).join('; '));
      const reference = medians[0]!;
      for (const [i, [what]] of variants.entries()) {
        const m = medians[i]!;
        const tolerance = Math.max(TIMING_TOLERANCE_MS, Math.max(m, reference) / 2);
        must.hold(Math.abs(m - reference) <= tolerance, 'SEC-9', `a failed authentication naming ${what} within ${ms(tolerance)} ms of one with a wrong secret (${ms(reference)} ms)`, `${ms(m)} ms`);
      }
    },
  },
];
