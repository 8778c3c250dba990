// The account of one-time prekeys in the `prekeys` scenario, and the HTTP figures the scenario reports.
//
// The ledger knows every one-time prekey the run uploaded (per device: keyId → publicKey, never reusing a keyId,
// PKY-9) and what became of each upload: stored (200, PKY-8), refused (4xx: "storing nothing", PKY-6/PKY-7) or
// uncertain (no answer, or a 5xx). Each bundle fetch that answered hands out at most one of them. Three checks follow:
//   - a (device, keyId) handed out twice is a duplicate handout: PKY-15 says a one-time prekey handed out is never
//     handed out again, by any fetch, concurrent or later;
//   - a handed-out key the run never uploaded, or uploaded with another publicKey, or uploaded in a refused batch, is
//     an unknown handout (IDN-12 serves keys unchanged; PKY-6/PKY-7 store nothing of a refused batch);
//   - at the end, each device's GET /v1/keys/count (PKY-10) must lie within what the uploads and handouts allow:
//     at least stored − handed out − fetches without an answer (each may have consumed one, PKY-15), at most
//     stored + keys of unanswered uploads − handed out. Outside that, keys were lost (PKY-8) or restored (PKY-15).
import { randomBytes } from 'node:crypto';
import type { Percentiles } from './histogram.ts';

/** Examples kept per kind of failure (the report names them; the counts stay exact). */
const MAX_EXAMPLES = 10;
/** keyId space of one-time prekeys (PROTOCOL.md section 3). */
export const MAX_KEY_ID = 16_777_215;

export interface PreKey {
  keyId: number;
  publicKey: string;
}

type KeyState = 'pending' | 'stored' | 'refused' | 'uncertain';
export type UploadOutcome = 'stored' | 'refused' | 'uncertain';
export type HandoutVerdict = 'first' | 'duplicate' | 'unknown';

/** The one-time prekeys of one device, as far as the run knows them. */
export class DeviceKeys {
  readonly keys = new Map<number, { publicKey: string; state: KeyState }>();
  readonly handedOut = new Set<number>();
  nextKeyId = 1;
  /** Keys in uploads answered 200, still waiting for an answer, or left without one. */
  stored = 0;
  pending = 0;
  uncertainUploadKeys = 0;
  /** Distinct handed-out keys that came from uploads left without an answer (they were stored after all). */
  handedOutUncertain = 0;
  /** Bundle fetches for this device left without an answer: each may have consumed one key. */
  uncertainFetches = 0;
  emptyBundles = 0;

  constructor(
    readonly userId: string,
    readonly deviceId: number,
  ) {}

  get label(): string {
    return `${this.userId}.${this.deviceId}`;
  }

  /** The most keys the server can hold for this device now (it never holds more): the room left for uploads. */
  get upperBound(): number {
    return this.stored + this.pending + this.uncertainUploadKeys - this.handedOut.size;
  }

  /** The range GET /v1/keys/count may answer once no upload is pending (see the head of this file). */
  countRange(): { low: number; high: number } {
    const handedOutStored = this.handedOut.size - this.handedOutUncertain;
    return { low: Math.max(0, this.stored - handedOutStored - this.uncertainFetches), high: this.stored + this.uncertainUploadKeys - this.handedOut.size };
  }
}

export interface PrekeyLedgerSummary {
  devices: number;
  /** Keys in uploads answered 200. */
  prekeysUploaded: number;
  /** Distinct one-time prekeys handed out (first handouts). */
  prekeysHandedOut: number;
  /** Bundles answered 200 without a one-time prekey (the device had none left: PKY-16, not an error). */
  bundlesWithoutPrekey: number;
  duplicateHandouts: number;
  duplicateExamples: string[];
  unknownHandouts: number;
  unknownExamples: string[];
  /** Requests left without an answer: fetches that may have consumed a key, keys of uploads that may be stored. */
  uncertainFetches: number;
  uncertainUploadKeys: number;
  /** Devices whose GET /v1/keys/count was checked, and those outside the allowed range. */
  countsChecked: number;
  countMismatches: number;
  countExamples: string[];
  /** Sum of the checked devices' counts at the end. */
  prekeysRemaining: number;
}

function example(list: string[], text: string): void {
  if (list.length < MAX_EXAMPLES) list.push(text);
}

/** A Curve25519 public key in the spec's encoding (0x05 and 32 random bytes, padded base64; common.json#publicKey). */
function publicKeyOf(bytes: Buffer): string {
  return Buffer.concat([Buffer.from([0x05]), bytes]).toString('base64');
}

export class PrekeyLedger {
  private readonly devices: DeviceKeys[] = [];
  private duplicateHandouts = 0;
  private readonly duplicateExamples: string[] = [];
  private unknownHandouts = 0;
  private readonly unknownExamples: string[] = [];
  private countsChecked = 0;
  private countMismatches = 0;
  private readonly countExamples: string[] = [];
  private prekeysRemaining = 0;

  device(userId: string, deviceId: number): DeviceKeys {
    const device = new DeviceKeys(userId, deviceId);
    this.devices.push(device);
    return device;
  }

  /** `n` fresh one-time prekeys for `device`, with keyIds it never used (PKY-9), pending until their upload answers. */
  issue(device: DeviceKeys, n: number): PreKey[] {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`a batch has at least one key (got ${n})`);
    if (device.nextKeyId + n - 1 > MAX_KEY_ID) throw new RangeError(`device ${device.label} ran out of one-time prekey ids`);
    const random = randomBytes(32 * n);
    const keys: PreKey[] = [];
    for (let i = 0; i < n; i++) {
      const key = { keyId: device.nextKeyId++, publicKey: publicKeyOf(random.subarray(32 * i, 32 * i + 32)) };
      device.keys.set(key.keyId, { publicKey: key.publicKey, state: 'pending' });
      keys.push(key);
    }
    device.pending += n;
    return keys;
  }

  /** The answer to an upload of `keys` (issued by issue()): 200 stored, 4xx refused, none or 5xx uncertain. */
  uploadAnswered(device: DeviceKeys, keys: readonly PreKey[], outcome: UploadOutcome): void {
    for (const key of keys) {
      const entry = device.keys.get(key.keyId);
      if (!entry || entry.state !== 'pending') throw new RangeError(`key ${device.label}#${key.keyId} is not pending`);
      entry.state = outcome;
      if (device.handedOut.has(key.keyId) && outcome === 'uncertain') device.handedOutUncertain++;
    }
    device.pending -= keys.length;
    if (outcome === 'stored') device.stored += keys.length;
    else if (outcome === 'uncertain') device.uncertainUploadKeys += keys.length;
  }

  /** A bundle fetch handed out `keyId` with `publicKey` for `device`. */
  handout(device: DeviceKeys, keyId: number, publicKey: string): HandoutVerdict {
    const entry = device.keys.get(keyId);
    // [IDN-12] served unchanged; [PKY-6] [PKY-7] a refused batch stores nothing.
    if (!entry || entry.publicKey !== publicKey || entry.state === 'refused') {
      this.unknownHandouts++;
      example(this.unknownExamples, `${device.label}#${keyId}`);
      return 'unknown';
    }
    // [PKY-15] a one-time prekey handed out is never handed out again.
    if (device.handedOut.has(keyId)) {
      this.duplicateHandouts++;
      example(this.duplicateExamples, `${device.label}#${keyId}`);
      return 'duplicate';
    }
    device.handedOut.add(keyId);
    if (entry.state === 'uncertain') device.handedOutUncertain++;
    return 'first';
  }

  /** A bundle answered 200 without a one-time prekey for `device` (PKY-16). */
  emptyBundle(device: DeviceKeys): void {
    device.emptyBundles++;
  }

  /** A bundle fetch for `device` without a usable answer: it may have consumed a key (PKY-15: never restored). */
  fetchUncertain(device: DeviceKeys): void {
    device.uncertainFetches++;
  }

  /** Checks `device`'s GET /v1/keys/count answer once nothing is pending; returns whether it is in range. */
  checkCount(device: DeviceKeys, remaining: number): boolean {
    const { low, high } = device.countRange();
    this.countsChecked++;
    this.prekeysRemaining += remaining;
    if (remaining >= low && remaining <= high) return true;
    this.countMismatches++;
    example(this.countExamples, `${device.label}: ${remaining} left, expected ${low === high ? low : `${low}..${high}`}`);
    return false;
  }

  summary(): PrekeyLedgerSummary {
    let uploaded = 0;
    let handedOut = 0;
    let empty = 0;
    let uncertainFetches = 0;
    let uncertainUploadKeys = 0;
    for (const d of this.devices) {
      uploaded += d.stored;
      handedOut += d.handedOut.size;
      empty += d.emptyBundles;
      uncertainFetches += d.uncertainFetches;
      uncertainUploadKeys += d.uncertainUploadKeys + d.pending;
    }
    return {
      devices: this.devices.length,
      prekeysUploaded: uploaded,
      prekeysHandedOut: handedOut,
      bundlesWithoutPrekey: empty,
      duplicateHandouts: this.duplicateHandouts,
      duplicateExamples: [...this.duplicateExamples],
      unknownHandouts: this.unknownHandouts,
      unknownExamples: [...this.unknownExamples],
      uncertainFetches,
      uncertainUploadKeys,
      countsChecked: this.countsChecked,
      countMismatches: this.countMismatches,
      countExamples: [...this.countExamples],
      prekeysRemaining: this.prekeysRemaining,
    };
  }
}

/** What one worker's HTTP load did (WorkerResult.http); summed over workers into the report's `http` section. */
export interface HttpFigures {
  /** autocannon connections, devices whose keys are fetched, devices that fetch. */
  connections: number;
  targets: number;
  requesters: number;
  /** --rate × --duration: the requests the run was asked to make. */
  offered: number;
  /** Requests sent, answered, and left without an answer (timed out, connection lost). */
  requests: number;
  answered: number;
  unanswered: number;
  fetches: number;
  uploads: number;
  /** Uploads due by the mix but sent as fetches: no target device had room under maxStoredPreKeys. */
  uploadsDeferred: number;
  byStatus: Record<string, number>;
  /** Answers other than the success the spec gives (bundle 200, upload 200), and requests without an answer. */
  errors: number;
  /** From the first request to autocannon's end. */
  elapsedMs: number;
  ledger: PrekeyLedgerSummary;
}

/** The report's `http` section (load/README.md). */
export interface HttpReport extends Omit<HttpFigures, 'ledger'>, PrekeyLedgerSummary {
  /** Answered requests per second over max(--duration, elapsed). */
  throughputRps: number;
  /** autocannon's per-request latency: request written to response complete (not from a schedule). */
  latency: Percentiles;
  /** From the request's slot in an even --rate timetable, or from its write when earlier (README: coordinated omission). */
  latencyFromSchedule: Percentiles;
}

function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [key, n] of Object.entries(from)) into[key] = (into[key] ?? 0) + n;
}

/** Sums the workers' figures (each worker fetches from its own devices, so their ledgers are disjoint). */
export function mergeHttpFigures(list: readonly HttpFigures[]): HttpFigures | undefined {
  if (list.length === 0) return undefined;
  const sum = (f: (h: HttpFigures) => number) => list.reduce((n, h) => n + f(h), 0);
  const ledger = (f: (l: PrekeyLedgerSummary) => number) => sum((h) => f(h.ledger));
  const examples = (f: (l: PrekeyLedgerSummary) => string[]) => list.flatMap((h) => f(h.ledger)).slice(0, MAX_EXAMPLES);
  const byStatus: Record<string, number> = {};
  for (const h of list) addCounts(byStatus, h.byStatus);
  return {
    connections: sum((h) => h.connections),
    targets: sum((h) => h.targets),
    requesters: sum((h) => h.requesters),
    offered: sum((h) => h.offered),
    requests: sum((h) => h.requests),
    answered: sum((h) => h.answered),
    unanswered: sum((h) => h.unanswered),
    fetches: sum((h) => h.fetches),
    uploads: sum((h) => h.uploads),
    uploadsDeferred: sum((h) => h.uploadsDeferred),
    byStatus,
    errors: sum((h) => h.errors),
    elapsedMs: Math.max(...list.map((h) => h.elapsedMs)),
    ledger: {
      devices: ledger((l) => l.devices),
      prekeysUploaded: ledger((l) => l.prekeysUploaded),
      prekeysHandedOut: ledger((l) => l.prekeysHandedOut),
      bundlesWithoutPrekey: ledger((l) => l.bundlesWithoutPrekey),
      duplicateHandouts: ledger((l) => l.duplicateHandouts),
      duplicateExamples: examples((l) => l.duplicateExamples),
      unknownHandouts: ledger((l) => l.unknownHandouts),
      unknownExamples: examples((l) => l.unknownExamples),
      uncertainFetches: ledger((l) => l.uncertainFetches),
      uncertainUploadKeys: ledger((l) => l.uncertainUploadKeys),
      countsChecked: ledger((l) => l.countsChecked),
      countMismatches: ledger((l) => l.countMismatches),
      countExamples: examples((l) => l.countExamples),
      prekeysRemaining: ledger((l) => l.prekeysRemaining),
    },
  };
}

/** The share of --rate × --duration a run must send; below it autocannon could not keep the rate (README). */
export const MIN_SENT_SHARE = 0.9;

/** The verdict's failures for the HTTP section: prekey correctness first, then a rate the tool could not keep. */
export function httpFailures(h: HttpFigures): string[] {
  const l = h.ledger;
  const failures: string[] = [];
  if (l.duplicateHandouts > 0) failures.push(`${l.duplicateHandouts} one-time prekey(s) handed out more than once (PKY-15), e.g. ${l.duplicateExamples.join(', ')}`);
  if (l.unknownHandouts > 0) failures.push(`${l.unknownHandouts} handed-out one-time prekey(s) not as uploaded (IDN-12, PKY-6, PKY-7), e.g. ${l.unknownExamples.join(', ')}`);
  if (l.countMismatches > 0) failures.push(`${l.countMismatches} device(s) whose GET /v1/keys/count is outside what uploads and handouts allow (PKY-8, PKY-10, PKY-15), e.g. ${l.countExamples.join('; ')}`);
  if (h.answered === 0) failures.push('no HTTP request was answered');
  else if (h.requests < h.offered * MIN_SENT_SHARE) failures.push(`only ${h.requests} of ${h.offered} requests (--rate × --duration) were sent: autocannon's connections were busy (raise --http-connections) or the server answered too slowly`);
  return failures;
}
