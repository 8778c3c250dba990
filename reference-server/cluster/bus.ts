// The session bus: what the server processes of one service tell each other about live sessions, so that they behave
// towards clients as one server [DPL-1]. Queues, accounts and wake-ups of 'enqueued' items go through the store; the
// bus carries what lives only in memory: which process holds each device's session (replacement, section 4.12),
// whether each user has a session anywhere (presence, section 5.1), typing (5.2), and the hub's notices that concern a
// session (prekeys_low). Two implementations: LocalBus (one process, the default: today's behaviour) and RedisBus
// (Redis keys plus pub/sub, for processes sharing a Redis deployment).
//
// Claims order the sessions of a device: every hello that passes authentication takes a claim number, higher than
// every earlier claim of that device in the whole service. The session with the highest claim is the device's
// session; any session with a lower claim, on any process, ends with SESSION_REPLACED [DLV-34]. When two hellos for
// one device race on two processes, the later claim wins on both, whatever order the messages arrive in.
import type { DeviceAddress } from '../store/store.ts';

/** A user's presence as the service knows it, with the version of its last transition (ascending per user). */
export interface PresenceState {
  userId: string;
  online: boolean;
  /** [PRS-2] When the user's last session closed, if recorded (only with online false). */
  lastSeenAt?: number;
  /**
   * Counts the user's transitions: a transition carries the version it produced, a snapshot the version of the last
   * transition it includes. A transition whose version is at most a snapshot's is already reflected in it.
   */
  version: number;
}

export type TypingState = 'started' | 'stopped';

/** What a process does when the bus tells it something; the gateway implements these. */
export interface BusHandlers {
  /**
   * [DLV-34] Sessions of `device` with a claim below `claim` must end with SESSION_REPLACED. Resolves once every such
   * session of this process has been sent its error and close, and every claim of the device this process was still
   * deciding with a lower number has been settled (so that a chain of replacements completes in claim order).
   */
  replace(device: DeviceAddress, claim: number): Promise<void>;
  /** [PRS-6] A user went online or offline (on any process). */
  presence(state: PresenceState): void;
  /** [PRS-11] Forward to this process's sessions of `to`, except the sending device. */
  typing(to: string, from: DeviceAddress, state: TypingState): void;
  /** [PKY-20] A bundle fetch on some process left `device` below the low-water mark. */
  prekeysLow(device: DeviceAddress, remaining: number): void;
  /** [IDN-29] A device was deleted through some process. */
  deviceRemoved(device: DeviceAddress): void;
  /**
   * The bus may have missed transitions (its connection to the shared state was lost and is back): presence must be
   * read again for the users this process watches [PRS-7].
   */
  resync(): void;
  /**
   * The service considers this process gone (its lease expired, for example after a long stall) and has released its
   * sessions: they must end (SERVER_RESTART) so that their clients reconnect and claim again.
   */
  lost(): void;
}

export interface SessionBus {
  /** This process's id within the service (unique among the live processes). */
  readonly processId: string;
  /** Connects and starts delivering events to `handlers`; resolves once the bus works. */
  start(handlers: BusHandlers): Promise<void>;
  /**
   * [DLV-34] Takes a claim for a session of `device` that has just authenticated. `onNumber` hears the claim number
   * as soon as it is known. Resolves (with the number) once every session of the device with a lower claim, on every
   * process, has been sent SESSION_REPLACED (or its process is gone); the user counts as online from this claim
   * until it is released [PRS-1]. Rejects with StoreUnavailableError when the shared state cannot be reached.
   */
  claim(device: DeviceAddress, onNumber: (claim: number) => void): Promise<number>;
  /**
   * The session of this claim ended (or never opened). A no-op when a later claim of the device replaced it (the user
   * stays online, DLV-37); otherwise the device has no session, and when it was the user's last the user goes offline
   * with its last-seen time [PRS-2]. `claim` undefined: the claim's number never became known (its request failed).
   */
  release(device: DeviceAddress, claim: number | undefined): void;
  /** [PRS-4] The current presence of each user, in order. Rejects with StoreUnavailableError when it cannot be read. */
  presence(userIds: readonly string[]): Promise<PresenceState[]>;
  /** [PRS-11] Tells every process (this one included) to forward a typing signal to its sessions of `to`. */
  typing(to: string, from: DeviceAddress, state: TypingState): void;
  /** Tells every process (this one included) that a device's prekeys ran low [PKY-20]. */
  prekeysLow(device: DeviceAddress, remaining: number): void;
  /** Tells every process (this one included) that a device was deleted [IDN-29]. */
  deviceRemoved(device: DeviceAddress): void;
  /**
   * [DLV-10] The highest seq of the device's queue that any process of the service wrote in a deliver frame, as far
   * as the bus knows (0 when nothing is known; the process's own memory is consulted beside it). Never rejects.
   */
  deliveredMark(device: DeviceAddress): Promise<number>;
  /** [DLV-10] A deliver frame carried items of the device up to `seq`. */
  markDelivered(device: DeviceAddress, seq: number): void;
  /** [IDN-23] A device authenticated (an HTTP request or a hello) at `at`, on this process. */
  deviceSeen(device: DeviceAddress, at: number): void;
  /**
   * [IDN-23] deviceId → the latest authentication time the bus knows of, for the devices of a user, from every
   * process (the process's own record is consulted beside it). Never rejects: resolves empty when it cannot read.
   */
  devicesSeen(userId: string): Promise<Map<number, number>>;
  /** Finishes the releases already asked for, leaves the service and disconnects. Idempotent. */
  close(): Promise<void>;
}
