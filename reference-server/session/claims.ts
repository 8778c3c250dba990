// Claiming a device's session across the processes of a service (section 4.12, cluster/bus.ts): a hello that passed
// authentication takes a claim from the bus; the bus ends every session of the device with a lower claim, here or on
// another process, before the claim resolves [DLV-34]; then the session registers locally and is welcomed.
//
// Races are settled by claim numbers. A replacement request (from the bus) for claim n ends the registered session
// of the device if its claim is lower, and marks every claim of the device this process is still deciding: such a
// claim, once numbered, loses if its number is below n. The request is answered only when those lower claims have
// settled, so that when claims n-1 and n race the session of n is never welcomed while n-1's predecessor lives on.
// Waits only ever go from a claim to lower ones, so they cannot form a cycle.
import type { SessionBus } from '../cluster/bus.ts';
import type { DeviceAddress } from '../store/store.ts';
import { deviceKey, type RegisteredSession, type SessionRegistry } from './registry.ts';

export interface ClaimingSession extends RegisteredSession {
  claim: number | undefined;
}

/** A claim of this process still being decided. */
class PendingClaim {
  number: number | undefined;
  /** The highest claim that asked for the device's older sessions to end while this one was pending. */
  supersededBy = 0;
  private numbered!: (claim: number) => void;
  private finished!: () => void;
  /** Resolves with the claim's number, or 0 when its request failed. */
  readonly whenNumbered = new Promise<number>((resolve) => (this.numbered = resolve));
  /** Resolves once the claim has been decided (registered, lost, or failed). */
  readonly whenDone = new Promise<void>((resolve) => (this.finished = resolve));

  setNumber(claim: number): void {
    this.number = claim;
    this.numbered(claim);
  }

  finish(): void {
    if (this.number === undefined) this.numbered(0);
    this.finished();
  }
}

export class SessionClaims<S extends ClaimingSession> {
  private readonly pending = new Map<string, Set<PendingClaim>>();

  constructor(
    private readonly bus: SessionBus,
    private readonly registry: SessionRegistry<S>,
  ) {}

  /**
   * [DLV-34] Claims the device for `session` and registers it. Resolves true when the session may be welcomed: every
   * older session of the device, on any process, has been sent SESSION_REPLACED. Resolves false when a newer claim of
   * the device won first: the session must end as replaced (and call release). Rejects when the bus is unavailable.
   */
  async claim(session: S): Promise<boolean> {
    const key = deviceKey(session.address);
    const entry = new PendingClaim();
    let entries = this.pending.get(key);
    if (!entries) this.pending.set(key, (entries = new Set()));
    entries.add(entry);
    try {
      const claim = await this.bus.claim(session.address, (number) => {
        session.claim = number;
        entry.setNumber(number);
      });
      session.claim = claim;
      if (entry.supersededBy > claim) return false;
      return this.registry.claim(session);
    } finally {
      entry.finish();
      entries.delete(entry);
      if (entries.size === 0) this.pending.delete(key);
    }
  }

  /** A session that asked for a claim ended (or lost): it leaves the registry and its claim is released. */
  release(session: S): void {
    this.registry.release(session);
    this.bus.release(session.address, session.claim);
  }

  /** The bus handler of BusHandlers.replace: see the comment at the top. */
  async replace(device: DeviceAddress, claim: number): Promise<void> {
    const current = this.registry.get(device);
    if (current !== undefined && (current.claim ?? 0) < claim) current.replaced();
    const waits: Array<Promise<void>> = [];
    for (const entry of this.pending.get(deviceKey(device)) ?? []) {
      entry.supersededBy = Math.max(entry.supersededBy, claim);
      waits.push(entry.whenNumbered.then((number) => (number < claim ? entry.whenDone : undefined)));
    }
    await Promise.all(waits);
  }
}
