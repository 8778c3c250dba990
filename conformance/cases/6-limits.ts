// Section 6.5 of PROTOCOL.md: how a server counts "N requests per 60 seconds" (LIM-8, LIM-9), the retryAfterMs of
// its refusals (LIM-10) and the Retry-After header of an HTTP 429 (ERR-4). The limit exercised is
// prekeyFetchesPerMinute: advertised, and counted per requesting device, so that a case exhausts it with a device of
// its own whatever else runs. Fetches are spread over several target users, and a 429 before the limit is checked
// against a fresh target, so that a per-target limit (PKY-18, a MAY) is not mistaken for the per-device one.
import type { HttpResult } from '../../reference-client/wire/http.ts';
import type { ConformanceCase } from '../case.ts';
import type { CaseContext, Device, User } from '../context.ts';
import { as, httpErrorOf, must } from '../expect.ts';
import { envelopeOf, send, sendOk } from '../messaging.ts';
import type { Session } from '../session.ts';

/** prekeyFetchesPerMinute above this makes the cases UNSUPPORTED rather than slow. */
const MAX_FETCH_PROBE = 200;
/** Target users the fetches rotate over. */
const TARGETS = 8;
/** Fresh targets a case registers at most when fetches meet a per-target limit. */
const MAX_FRESH_TARGETS = 8;
/** Slack for the server's clock granularity when comparing retryAfterMs with the time the window frees. */
const CLOCK_SLACK_MS = 50;

interface AtTheLimit {
  requester: Device;
  limit: number;
  /** Case time (performance.now) at which the answer to the first counted fetch arrived. */
  firstAnsweredAt: number;
  /** Fetches one more bundle, of a target the requester has fetched least. */
  fetch(): Promise<HttpResult>;
}

/**
 * Makes prekeyFetchesPerMinute bundle fetches with a fresh device; LIM-8: none may be refused. A 429 on the way is
 * taken for a per-target limit only if a fetch of a fresh target then succeeds (requests answered 429 do not count).
 */
async function fetchUpToTheLimit(ctx: CaseContext): Promise<AtTheLimit> {
  const requester = (await ctx.user()).devices[0]!;
  const session = await ctx.connect(requester);
  const limit = session.limits.prekeyFetchesPerMinute;
  await session.close();
  if (limit > MAX_FETCH_PROBE) ctx.unsupported(`prekeyFetchesPerMinute ${limit} is above the ${MAX_FETCH_PROBE} fetches this case makes`);
  const targets: Array<{ user: User; fetches: number }> = [];
  for (let i = 0; i < Math.min(TARGETS, limit); i++) targets.push({ user: await ctx.user(), fetches: 0 });
  const fetch = async (): Promise<HttpResult> => {
    const target = targets.reduce((least, t) => (t.fetches < least.fetches ? t : least));
    target.fetches++;
    return ctx.http('getPreKeyBundle', { params: { userId: target.user.userId }, credentials: requester });
  };
  let firstAnsweredAt = 0;
  let fresh = 0;
  for (let counted = 0; counted < limit; ) {
    const result = await fetch();
    const answeredAt = performance.now();
    if (result.status === 429 && fresh < MAX_FRESH_TARGETS) {
      fresh++;
      ctx.note(`fetch ${counted + 1} of ${limit} met 429: trying a fresh target, in case the server also limits fetches per target (PKY-18)`);
      targets.push({ user: await ctx.user(), fetches: -1 });
      continue;
    }
    must.status(result, 200, 'LIM-8', `fetch ${counted + 1} of prekeyFetchesPerMinute (${limit}) within 60 s`);
    if (counted === 0) firstAnsweredAt = answeredAt;
    counted++;
  }
  return { requester, limit, firstAnsweredAt, fetch };
}

export const cases: ConformanceCase[] = [
  {
    id: '6.5/rate-limit-counts-and-retry-after',
    requirements: ['LIM-8', 'LIM-10', 'ERR-4', 'PKY-17'],
    level: 'must',
    title: 'N bundle fetches per minute pass; the next gets 429 with retryAfterMs no later than the window frees and Retry-After in seconds',
    async run(ctx) {
      const { limit, firstAnsweredAt, fetch } = await fetchUpToTheLimit(ctx);
      const sentAt = performance.now();
      const refused = await fetch();
      must.httpError(refused, 429, 'RATE_LIMITED', 'PKY-17', `fetch ${limit + 1} within 60 s`);
      const retryAfterMs = httpErrorOf(refused)?.retryAfterMs;
      must.hold(typeof retryAfterMs === 'number' && Number.isInteger(retryAfterMs) && retryAfterMs >= 1, 'LIM-10', 'retryAfterMs, an integer of at least 1', refused.body);
      const wait = retryAfterMs as number;
      // Every counted fetch reached the server after this case started it, the first one no later than its answer
      // arrived: 60 s after that, none is left in the window, so the same fetch would pass.
      const latest = Math.ceil(firstAnsweredAt + 60_000 - sentAt) + CLOCK_SLACK_MS;
      must.hold(wait <= latest, 'LIM-10', `retryAfterMs of at most ${latest} (the first counted fetch leaves the window by then)`, wait);
      must.equal(refused.headers.get('retry-after'), String(Math.ceil(wait / 1000)), 'ERR-4', `Retry-After with retryAfterMs ${wait}`);
      if (wait + 500 > ctx.remaining() - 1000) {
        ctx.note(`retryAfterMs ${wait} does not fit the case time left: the fetch after it is not tried`);
        return;
      }
      await ctx.sleep(wait + 50);
      must.status(await fetch(), 200, 'LIM-10', `a fetch retryAfterMs (${wait} ms) after the refusal`);
    },
  },
  {
    id: '6.5/rate-limit-refuses-from-n',
    requirements: ['LIM-9'],
    level: 'should',
    title: 'once N bundle fetches were made in the last 60 s, every further fetch is refused (refusals do not count)',
    async run(ctx) {
      const { limit, fetch } = await fetchUpToTheLimit(ctx);
      for (let i = 1; i <= 3; i++) must.httpError(await fetch(), 429, 'RATE_LIMITED', 'LIM-9', `fetch ${limit + i} within 60 s`);
    },
  },
  // The values themselves: the relations between them (LIM-3, LIM-4), and that the values a welcome advertises are the
  // ones enforced, at their exact boundaries, for the whole session and on the device's HTTP requests (LIM-5).
  {
    id: '6.5/advertised-limits-consistent',
    requirements: ['LIM-3', 'IDN-6', 'MSG-13'],
    level: 'must',
    title: 'the advertised limits satisfy the relations of LIM-3, and what those promise fits: a registration with a full prekey batch, a deliver of the largest envelope',
    async run(ctx) {
      const alice = await ctx.user();
      const a1 = alice.devices[0]!;
      const a = await ctx.connect(a1);
      const l = a.limits;
      const relations: Array<[boolean, string, unknown]> = [
        [l.maxRedeliveryBackoffMs >= l.ackTimeoutMs, 'maxRedeliveryBackoffMs >= ackTimeoutMs', [l.maxRedeliveryBackoffMs, l.ackTimeoutMs]],
        [l.maxPresenceSubscriptions >= l.maxPresenceBatch, 'maxPresenceSubscriptions >= maxPresenceBatch', [l.maxPresenceSubscriptions, l.maxPresenceBatch]],
        [l.maxStoredPreKeys >= l.prekeyBatchMax, 'maxStoredPreKeys >= prekeyBatchMax', [l.maxStoredPreKeys, l.prekeyBatchMax]],
        [l.prekeyLowWater <= l.maxStoredPreKeys, 'prekeyLowWater <= maxStoredPreKeys', [l.prekeyLowWater, l.maxStoredPreKeys]],
        [l.maxFrameBytes >= 4 * Math.ceil(l.maxEnvelopeBytes / 3) + 4096, 'maxFrameBytes >= 4 × ⌈maxEnvelopeBytes / 3⌉ + 4096', [l.maxFrameBytes, l.maxEnvelopeBytes]],
        [l.maxHttpBodyBytes >= 4096 + 128 * l.prekeyBatchMax, 'maxHttpBodyBytes >= 4096 + 128 × prekeyBatchMax', [l.maxHttpBodyBytes, l.prekeyBatchMax]],
      ];
      for (const [holds, relation, values] of relations) must.hold(holds, 'LIM-3', relation, values, 'advertised limits');
      // What the last two relations are for: a registration with a full batch of prekeys fits maxHttpBodyBytes (the
      // context requires 201), and one item of the largest envelope fits a deliver frame.
      const bob = await ctx.user({ prekeys: l.prekeyBatchMax });
      const sent = await sendOk(ctx, a, a1, bob, { bytes: l.maxEnvelopeBytes });
      const [item] = await (await ctx.connect(bob.devices[0]!)).takeItems(1, 'DLV-9');
      must.equal(item!.kind === 'message' ? item!.envelope : undefined, envelopeOf(sent, bob.devices[0]!), 'MSG-13', `the delivered envelope of maxEnvelopeBytes (${l.maxEnvelopeBytes})`);
    },
  },
  {
    id: '6.5/dedupe-window-covers-retention',
    requirements: ['LIM-4'],
    level: 'should',
    title: 'dedupeWindowSec is at least retentionSec, so that a resend of a message that may still be queued is recognised',
    async run(ctx) {
      const user = await ctx.user();
      const { dedupeWindowSec, retentionSec } = (await ctx.connect(user.devices[0]!)).limits;
      must.hold(dedupeWindowSec >= retentionSec, 'LIM-4', 'dedupeWindowSec >= retentionSec', { dedupeWindowSec, retentionSec });
    },
  },
  {
    id: '6.5/advertised-limits-applied',
    requirements: ['LIM-5'],
    level: 'must',
    title: "the values of a session's welcome are the ones enforced at their exact boundaries, throughout the session and on the device's HTTP requests",
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const [a1, b1] = [alice.devices[0]!, bob.devices[0]!];
      const a = await ctx.connect(a1);
      const l = a.limits;
      const unknownUsers = (n: number) => Array.from({ length: n }, (_, i) => `nobody-${ctx.material.rng.int(1, 1e9)}-${i}`);
      const messageIds = (n: number) => Array.from({ length: n }, () => ctx.material.messageId());
      /** Each limit of the session at its value (passes that check) and one above (fails it). */
      const sessionBoundaries = async (s: Session, round: 'start' | 'later') => {
        const what = (text: string) => `${text} (${round === 'start' ? 'at the start of the session' : 'later in the session'})`;
        const atLimit = await send(ctx, s, a1, bob, { bytes: l.maxEnvelopeBytes });
        must.frameType(atLimit.answer, 'send_ok', 'LIM-5', what(`an envelope of maxEnvelopeBytes (${l.maxEnvelopeBytes})`));
        const over = await send(ctx, s, a1, bob, { bytes: l.maxEnvelopeBytes + 1 });
        must.errorFrame(over.answer, 'ENVELOPE_TOO_LARGE', 'LIM-5', over.id, what('an envelope of maxEnvelopeBytes + 1'));
        // Nothing was delivered on this session, so seqs that pass the frame check get INVALID_ACK, not INVALID_FRAME.
        s.ack({ id: `ack-at-${round}`, seqs: Array.from({ length: l.maxAckBatch }, () => 1) as [number, ...number[]] });
        must.errorFrame(await s.next('error', 'LIM-5', (e) => e.id === `ack-at-${round}`), 'INVALID_ACK', 'LIM-5', `ack-at-${round}`, what(`seqs of maxAckBatch (${l.maxAckBatch})`));
        s.ack({ id: `ack-over-${round}`, seqs: Array.from({ length: l.maxAckBatch + 1 }, () => 1) as [number, ...number[]] });
        must.errorFrame(await s.next('error', 'LIM-5', (e) => e.id === `ack-over-${round}`), 'INVALID_FRAME', 'LIM-5', `ack-over-${round}`, what('seqs of maxAckBatch + 1'));
        const to = { userId: b1.userId, deviceId: b1.deviceId };
        const receiptAt = await s.request({ type: 'receipt', id: `rr-at-${round}`, to, status: 'read', messageIds: messageIds(l.maxReceiptIds) as [string, ...string[]] }, 'LIM-5');
        must.equal(receiptAt, { type: 'receipt_ok', id: `rr-at-${round}` }, 'LIM-5', what(`a receipt of maxReceiptIds (${l.maxReceiptIds}) messageIds`));
        const receiptOver = await s.request({ type: 'receipt', id: `rr-over-${round}`, to, status: 'read', messageIds: messageIds(l.maxReceiptIds + 1) as [string, ...string[]] }, 'LIM-5');
        must.errorFrame(receiptOver, 'INVALID_FRAME', 'LIM-5', `rr-over-${round}`, what('a receipt of maxReceiptIds + 1 messageIds'));
        // Unknown users: a list within maxPresenceBatch passes the frame check and fails the user check.
        const subscribeAt = await s.request({ type: 'subscribe_presence', id: `sp-at-${round}`, userIds: unknownUsers(l.maxPresenceBatch) as [string, ...string[]] }, 'LIM-5');
        must.errorFrame(subscribeAt, 'UNKNOWN_USER', 'LIM-5', `sp-at-${round}`, what(`maxPresenceBatch (${l.maxPresenceBatch}) unknown userIds`));
        const subscribeOver = await s.request({ type: 'subscribe_presence', id: `sp-over-${round}`, userIds: unknownUsers(l.maxPresenceBatch + 1) as [string, ...string[]] }, 'LIM-5');
        must.errorFrame(subscribeOver, 'INVALID_FRAME', 'LIM-5', `sp-over-${round}`, what('maxPresenceBatch + 1 unknown userIds'));
      };
      await sessionBoundaries(a, 'start');
      // The device's HTTP requests, while its session is open, get the same values.
      const batch = Array.from({ length: l.prekeyBatchMax }, (_, i) => ({ keyId: 1 + i, publicKey: ctx.material.publicKey() }));
      must.status(await ctx.http('uploadOneTimePreKeys', { body: { preKeys: batch }, credentials: a1 }), 200, 'LIM-5', `an upload of prekeyBatchMax (${l.prekeyBatchMax}) prekeys`);
      const tooMany = Array.from({ length: l.prekeyBatchMax + 1 }, (_, i) => ({ keyId: 100_000 + i, publicKey: ctx.material.publicKey() }));
      must.httpError(await ctx.http('uploadOneTimePreKeys', { body: { preKeys: tooMany }, credentials: a1 }), 400, 'BAD_REQUEST', 'LIM-5', 'an upload of prekeyBatchMax + 1 prekeys');
      const signedPreKey = ctx.material.signedPreKey(a1.registration.identityKey, 2);
      const bodyOf = (bytes: number) => {
        const bare = JSON.stringify({ signedPreKey, padding: '' });
        return JSON.stringify({ signedPreKey, padding: 'x'.repeat(bytes - Buffer.byteLength(bare)) });
      };
      const json = { 'content-type': 'application/json; charset=utf-8' };
      must.status(await ctx.raw('PUT', '/v1/keys/signed', { body: bodyOf(l.maxHttpBodyBytes), headers: json, credentials: a1 }), 204, 'LIM-5', `a body of maxHttpBodyBytes (${l.maxHttpBodyBytes}) bytes`);
      must.httpError(await ctx.raw('PUT', '/v1/keys/signed', { body: bodyOf(l.maxHttpBodyBytes + 1), headers: json, credentials: a1 }), 413, 'PAYLOAD_TOO_LARGE', 'LIM-5', 'a body of maxHttpBodyBytes + 1 bytes');
      // Later in the same session, the same values still hold.
      await sessionBoundaries(a, 'later');
      must.equal(as(await a.request({ type: 'ping', id: 'end' }, 'KAL-1'), 'pong', 'KAL-1').id, 'end', 'KAL-1', 'a ping at the end');
    },
  },
];
