// Deliberately broken variants of the reference server, for testing the conformance suite only: each mutant plants
// one bug at the exact place where the real code enforces a requirement, switched on by `tickwire serve
// --test-mutant NAME`. test/conformance/mutants.test.ts runs the relevant conformance cases against every mutant and
// requires the run to fail citing the requirement IDs listed here; a suite that passes a mutant has a gap.
//
// In the server every switch is one small branch on the name, marked `// mutant: name`. The name is read once
// (into a field or a constant) when a session, the store or the gateway is set up; without --test-mutant the real
// code paths are unchanged.
import type { DeviceAddress } from './store/store.ts';

export interface Mutant {
  /** kebab-case, the value of --test-mutant. */
  name: string;
  /** One line: the bug it plants. */
  bug: string;
  /** Requirement IDs the bug violates, as the conformance suite reports them (failure.requirementId) when it catches it. */
  violates: readonly string[];
}

export const MUTANTS = [
  {
    name: 'ack-before-durable',
    bug: 'send_ok before the message is in the log (written seconds later): a crash loses it',
    violates: ['DLV-39'],
  },
  {
    name: 'drop-queue-on-disconnect',
    bug: "the device's queue is removed (as if acknowledged) when its session ends",
    violates: ['DLV-24'],
  },
  {
    name: 'deliver-out-of-order',
    bug: 'first deliveries go out newest first, one item per deliver frame',
    violates: ['DLV-7', 'DLV-31'],
  },
  {
    name: 'delete-before-ack',
    bug: "an item leaves the queue when it is delivered, before the recipient's ack",
    violates: ['DLV-24'],
  },
  {
    name: 'prekey-handed-out-twice',
    bug: 'a bundle fetch does not consume the one-time prekey it hands out',
    violates: ['PKY-15'],
  },
  {
    name: 'skip-queue-empty',
    bug: 'no session ever gets its queue_empty marker',
    violates: ['DLV-25'],
  },
  {
    name: 'accept-frame-for-other-device',
    bug: 'a `from` member of a send or receipt frame replaces the authenticated sender',
    violates: ['AUT-9'],
  },
  {
    name: 'forget-offline-receipts',
    bug: 'receipts made while their device had no session are dropped when it connects',
    violates: ['RCP-1', 'RCP-11'],
  },
  {
    name: 'ignore-window',
    bug: 'delivery ignores the window: every queued item goes out at once',
    violates: ['DLV-8'],
  },
  {
    name: 'no-redelivery',
    bug: 'an unacknowledged item is never delivered again on the same session',
    violates: ['DLV-21'],
  },
  {
    name: 'duplicate-enqueued',
    bug: 'no deduplication: a resend with the same messageId is enqueued again as new',
    violates: ['MSG-14'],
  },
  {
    name: 'delivered-receipt-not-durable',
    bug: 'an ack is made durable without the delivered receipts it made, so a crash loses them',
    violates: ['RCP-5'],
  },
] as const satisfies readonly Mutant[];

export type MutantName = (typeof MUTANTS)[number]['name'];

export const MUTANT_NAMES: readonly MutantName[] = MUTANTS.map((m) => m.name);

export function isMutantName(name: string): name is MutantName {
  return (MUTANT_NAMES as readonly string[]).includes(name);
}

/**
 * ack-before-durable: how long an accepted message's record waits in memory before it is appended to the log. Long
 * enough that a crash right after send_ok (the conformance suite's SIGKILL restart) always finds it unwritten; a
 * graceful shutdown writes it at once.
 */
export const ACK_BEFORE_DURABLE_WRITE_DELAY_MS = 5000;

/** accept-frame-for-other-device: the device a client frame claims to come from in a `from` member, if any. */
export function claimedSender(frame: object): DeviceAddress | undefined {
  const from = (frame as { from?: unknown }).from;
  if (typeof from !== 'object' || from === null) return undefined;
  const { userId, deviceId } = from as { userId?: unknown; deviceId?: unknown };
  return typeof userId === 'string' && Number.isSafeInteger(deviceId) ? { userId, deviceId: deviceId as number } : undefined;
}
