// prekeys: prekey bundle fetches and one-time prekey uploads over HTTP, driven by autocannon, with every one-time
// prekey accounted for (load/prekey-ledger.ts).
//
// Setup (not timed): register --count target devices and, when the server's advertised prekeyFetchesPerMinute
// (welcome.limits, read on one session) needs more, requester-only devices; upload INITIAL_PREKEYS one-time prekeys
// to each target (POST /v1/keys/one-time). Load: autocannon, in this worker process, at its overallRate (this
// worker's share of --rate) over --http-connections keep-alive connections, one request in flight per connection,
// until it has sent --rate × --duration requests and had their answers (at most --duration + --drain-timeout). Request k of the run is an upload when the --upload-ratio mix says so (exactly that share,
// deterministically), else a bundle fetch: GET /v1/users/{userId}/keys?deviceId=N of another user's target device,
// authenticated as the next requester (Basic auth, spec/routes.json), round-robin so that each requester stays under
// the advertised fetch limit (PKY-17). An upload adds UPLOAD_BATCH fresh keys (keyIds never used before, PKY-9) to
// the target with room under maxStoredPreKeys (PKY-7). Afterwards GET /v1/keys/count of each target checks that no
// key was lost or restored.
//
// Each worker fetches only from its own targets, so its ledger is complete; one worker is the default, and
// autocannon's own worker threads are not used (its setupRequest must then be a file, and the ledger would be split).
import autocannon from 'autocannon';
import type { Credentials } from '../../reference-client/wire/connection.ts';
import { basicAuth } from '../../reference-client/wire/http.ts';
import { inPool } from '../peer.ts';
import { PrekeyLedger, type DeviceKeys, type HttpFigures, type PreKey } from '../prekey-ledger.ts';
import { until, type Scenario, type WorkerContext } from '../scenario.ts';

/** One-time prekeys each target starts with (at most the server's prekeyBatchMax and maxStoredPreKeys). */
const INITIAL_PREKEYS = 100;
/** One-time prekeys per upload request (at most prekeyBatchMax): a client topping up after prekeys_low (PKY-24). */
const UPLOAD_BATCH = 10;
/**
 * The share of the advertised prekeyFetchesPerMinute one requester uses. autocannon sends each connection's quota
 * at the start of each second, so a sliding 60-s window can hold one second more than the average: keep a margin.
 */
const FETCH_BUDGET = 0.8;
/** Setup requests (uploads, counts) in flight at once. */
const SETUP_CONCURRENCY = 16;
/** autocannon's per-request timeout; an unanswered request counts as an error and its effect as uncertain. */
const REQUEST_TIMEOUT_S = 10;
/** Defaults of --upload-ratio and --http-connections (load/cli.ts). */
export const DEFAULT_UPLOAD_RATIO = 0.1;
export const DEFAULT_HTTP_CONNECTIONS = 10;

interface Device {
  credentials: Credentials;
  authorization: string;
  keys?: DeviceKeys;
}

interface InFlight {
  kind: 'fetch' | 'upload';
  target: Device & { keys: DeviceKeys };
  keys?: PreKey[];
  sentAt: number;
  scheduledAt: number;
}

/** autocannon's per-connection context: the request in flight on that connection (pipelining 1). */
interface Slot {
  record?: InFlight;
}

function errorCode(body: string): string | undefined {
  try {
    const code = (JSON.parse(body) as { code?: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

/** The one entry a bundle fetch with ?deviceId must answer (PKY-13), or undefined when the body is not that. */
function bundleEntry(body: string, target: Credentials): { oneTimePreKey?: PreKey } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  const answer = parsed as { userId?: unknown; devices?: Array<{ deviceId?: unknown; oneTimePreKey?: { keyId?: unknown; publicKey?: unknown } }> };
  if (answer.userId !== target.userId || !Array.isArray(answer.devices) || answer.devices.length !== 1) return undefined;
  const entry = answer.devices[0]!;
  if (entry.deviceId !== target.deviceId) return undefined;
  const key = entry.oneTimePreKey;
  if (key === undefined) return {};
  if (typeof key.keyId !== 'number' || typeof key.publicKey !== 'string') return undefined;
  return { oneTimePreKey: { keyId: key.keyId, publicKey: key.publicKey } };
}

async function worker(ctx: WorkerContext): Promise<void> {
  const { assignment, stats } = ctx;
  const options = assignment.options;
  const uploadRatio = options.uploadRatio ?? DEFAULT_UPLOAD_RATIO;
  const rate = Math.max(1, Math.round(assignment.rate));
  const durationS = options.durationMs / 1000;
  const offered = Math.max(1, Math.round(rate * durationS));
  const connections = Math.min(options.httpConnections ?? DEFAULT_HTTP_CONNECTIONS, rate, offered);

  const registered = await ctx.registerUsers(assignment.count, 'k');
  if (registered.length < 2) throw new Error(`prekeys needs at least 2 registered target devices per worker (got ${registered.length} of ${assignment.count}; see the register errors)`);
  // The limits are advertised in welcome only (LIM-1): one session of the first target reads them.
  const probe = ctx.peer(registered[0]!);
  await probe.connect();
  const limits = probe.conn?.welcome?.limits;
  await probe.close();
  if (!limits) throw new Error('the probe session had no welcome limits');
  const initial = Math.min(INITIAL_PREKEYS, limits.prekeyBatchMax, limits.maxStoredPreKeys);
  const batch = Math.min(UPLOAD_BATCH, limits.prekeyBatchMax, limits.maxStoredPreKeys);
  // [PKY-17] Enough requesters that none makes more than FETCH_BUDGET of prekeyFetchesPerMinute in any 60 s.
  const fetchRate = rate * (1 - uploadRatio);
  const windowS = Math.min(60, Math.ceil(durationS) + 1);
  const perRequester = Math.max(1, Math.floor(limits.prekeyFetchesPerMinute * FETCH_BUDGET));
  const needed = Math.ceil((fetchRate * windowS) / perRequester);
  const extra = needed > registered.length ? await ctx.registerUsers(needed - registered.length, 'q') : [];

  const ledger = new PrekeyLedger();
  const device = (credentials: Credentials): Device => ({ credentials, authorization: basicAuth(credentials) });
  const targets = registered.map((c) => ({ ...device(c), keys: ledger.device(c.userId, c.deviceId) }));
  const requesters: Device[] = [...targets, ...extra.map(device)];
  await ctx.barrier('prepared');

  await inPool(targets, SETUP_CONCURRENCY, async (target) => {
    const keys = ledger.issue(target.keys, initial);
    try {
      const result = await ctx.http.call<{ code?: string }>('uploadOneTimePreKeys', { credentials: target.credentials, body: { preKeys: keys }, timeoutMs: 30_000 });
      ledger.uploadAnswered(target.keys, keys, result.status === 200 ? 'stored' : result.status >= 500 ? 'uncertain' : 'refused');
      if (result.status !== 200) stats.error(`setup:${result.body?.code ?? result.status}`);
    } catch (error) {
      ledger.uploadAnswered(target.keys, keys, 'uncertain');
      stats.error(`setup:${(error as Error).name}`);
    }
  });
  const go = await ctx.barrier('keyed');
  await until(go.at);

  const uploadPath = ctx.http.route('uploadOneTimePreKeys').path;
  const bundlePath = ctx.http.route('getPreKeyBundle').path;
  const latency = stats.histogram('http');
  const fromSchedule = stats.histogram('httpFromSchedule');
  const inFlight = new Set<InFlight>();
  const byStatus: Record<string, number> = {};
  const figures = { requests: 0, answered: 0, fetches: 0, uploads: 0, uploadsDeferred: 0, errors: 0 };
  let nextUploader = 0;
  let requestErrors = 0;
  const start = performance.now();

  const error = (kind: string) => {
    figures.errors++;
    stats.error(kind);
  };

  /** The target to upload to next: round-robin over those with room for a batch [PKY-7]; undefined if none has. */
  const uploader = (): InFlight['target'] | undefined => {
    for (let i = 0; i < targets.length; i++) {
      const target = targets[(nextUploader + i) % targets.length]!;
      if (target.keys.upperBound + batch <= limits.maxStoredPreKeys) {
        nextUploader += i + 1;
        return target;
      }
    }
    return undefined;
  };

  // Called by autocannon right before it writes each request: request k of this worker.
  const setupRequest = (request: autocannon.Request, context: object): autocannon.Request => {
    const k = figures.requests++;
    stats.sent++;
    const now = performance.now();
    const scheduledAt = start + (k * 1000) / rate;
    const wantsUpload = Math.floor((k + 1) * uploadRatio) > Math.floor(k * uploadRatio);
    const target = wantsUpload ? uploader() : undefined;
    if (wantsUpload && !target) figures.uploadsDeferred++;
    let record: InFlight;
    if (target) {
      figures.uploads++;
      const keys = ledger.issue(target.keys, batch);
      record = { kind: 'upload', target, keys, sentAt: now, scheduledAt };
      request.method = 'POST';
      request.path = uploadPath;
      request.headers = { authorization: target.authorization, 'content-type': 'application/json' };
      request.body = JSON.stringify({ preKeys: keys });
    } else {
      const f = figures.fetches++;
      const requester = requesters[f % requesters.length]!;
      // Spread over the targets, never the requester's own user (a fetch "of another user's device").
      let t = (f + Math.floor(f / requesters.length)) % targets.length;
      if (targets[t]!.credentials.userId === requester.credentials.userId) t = (t + 1) % targets.length;
      const fetched = targets[t]!;
      record = { kind: 'fetch', target: fetched, sentAt: now, scheduledAt };
      request.method = 'GET';
      request.path = `${bundlePath.replace('{userId}', encodeURIComponent(fetched.credentials.userId))}?deviceId=${fetched.credentials.deviceId}`;
      request.headers = { authorization: requester.authorization };
      request.body = '';
    }
    inFlight.add(record);
    (context as Slot).record = record;
    return request;
  };

  // Called by autocannon with each complete response, before its 'response' event.
  const onResponse = (status: number, body: string, context: object): void => {
    const slot = context as Slot;
    const record = slot.record;
    if (!record || !inFlight.delete(record)) return;
    slot.record = undefined;
    figures.answered++;
    stats.acked++;
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    fromSchedule.record(performance.now() - Math.min(record.sentAt, record.scheduledAt));
    const { target } = record;
    if (record.kind === 'upload') {
      // [PKY-8] 200: stored; [PKY-6] [PKY-7] 4xx: stored nothing; 5xx: unknown.
      ledger.uploadAnswered(target.keys, record.keys!, status === 200 ? 'stored' : status >= 500 ? 'uncertain' : 'refused');
      if (status !== 200) error(`upload:${errorCode(body) ?? status}`);
      return;
    }
    if (status !== 200) {
      // [PKY-17] a refused fetch consumes nothing; a 5xx might have.
      if (status >= 500) ledger.fetchUncertain(target.keys);
      error(`fetch:${errorCode(body) ?? status}`);
      return;
    }
    const entry = bundleEntry(body, target.credentials);
    if (!entry) {
      ledger.fetchUncertain(target.keys);
      error('fetch:MALFORMED');
    } else if (entry.oneTimePreKey) ledger.handout(target.keys, entry.oneTimePreKey.keyId, entry.oneTimePreKey.publicKey);
    // [PKY-16] no one-time prekey left: a 200 without one, not an error.
    else ledger.emptyBundle(target.keys);
  };

  const outcome = await new Promise<{ ok: boolean }>((resolve) => {
    const instance = autocannon(
      {
        url: assignment.url,
        connections,
        pipelining: 1,
        overallRate: rate,
        // Exactly --rate × --duration requests: autocannon ends once each connection has sent its share and had the
        // answers. A slow server stretches the sending past --duration (its lateness shows in latencyFromSchedule);
        // --drain-timeout bounds that, and what is left unsent then is the run's shortfall.
        maxOverallRequests: offered,
        duration: (options.durationMs + options.drainTimeoutMs) / 1000,
        // autocannon checks for its end once per sample interval: a short one ends the run on time.
        sampleInt: 100,
        timeout: REQUEST_TIMEOUT_S,
        requests: [{ setupRequest, onResponse }],
      },
      (err: unknown) => {
        clearInterval(watch);
        if (err) {
          error(`http:${(err as Error).message}`);
          resolve({ ok: false });
        } else resolve({ ok: true });
      },
    );
    instance.on('response', (_client, _status, _bytes, responseTime) => latency.record(responseTime));
    instance.on('reqError', (err: { code?: string; message?: string }) => {
      requestErrors++;
      error(`http:${err.code ?? (err.message === 'request timed out' ? 'TIMEOUT' : 'ERROR')}`);
    });
    const watch = setInterval(() => {
      if (ctx.aborted) instance.stop();
    }, 100);
  });
  const elapsedMs = Math.round(performance.now() - start);
  // Requests without an answer (timed out, connection lost, or in flight at the end): their effect is unknown. Those
  // in flight when autocannon stopped (--drain-timeout passed) are errors too; the others were counted as they failed.
  for (let n = inFlight.size - requestErrors; n > 0; n--) error('http:UNANSWERED');
  for (const record of inFlight) {
    if (record.kind === 'upload') ledger.uploadAnswered(record.target.keys, record.keys!, 'uncertain');
    else ledger.fetchUncertain(record.target.keys);
  }
  await ctx.barrier('loaded');

  if (outcome.ok && !ctx.aborted) {
    // [PKY-10] What is left of each target's keys must match what was stored and handed out.
    await inPool(targets, SETUP_CONCURRENCY, async (target) => {
      try {
        const result = await ctx.http.call<{ oneTimePreKeys: number; code?: string }>('getPreKeyCount', { credentials: target.credentials, timeoutMs: 30_000 });
        if (result.status === 200 && typeof result.body.oneTimePreKeys === 'number') ledger.checkCount(target.keys, result.body.oneTimePreKeys);
        else stats.error(`count:${result.body?.code ?? result.status}`);
      } catch (error) {
        stats.error(`count:${(error as Error).name}`);
      }
    });
  }
  const http: HttpFigures = {
    connections,
    targets: targets.length,
    requesters: requesters.length,
    offered,
    ...figures,
    unanswered: inFlight.size,
    byStatus,
    elapsedMs,
    ledger: ledger.summary(),
  };
  ctx.httpFigures = http;
}

export const prekeysScenario: Scenario = {
  name: 'prekeys',
  summary: 'bundle fetches and one-time prekey uploads over HTTP with autocannon at --rate; every prekey accounted for',
  sessionsPerUnit: 0,
  extraSessions: 0,
  worker,
};
