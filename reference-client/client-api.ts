// The public shape of the messaging library (reference-client/client.ts implements it; `tickwire chat` and
// applications use it). An application embeds one TickwireClient per device.
//
// Guarantees an application can rely on:
// - `send` resolves once the message is in the local outbox on disk; from then on the library delivers it to the
//   server at least once, with the same messageId, across reconnects and restarts, and reports its ticks.
// - A received message is handed to `onMessage` and acknowledged to the server only after that handler resolved,
//   so a crash in between means a redelivery, which the library de-duplicates by (sender, messageId) [DLV-29].
// - Receipts, presence and typing arrive as events; none of them is ever needed for correctness.

/** One device of a user, as the protocol addresses it. */
export interface Address {
  userId: string;
  deviceId: number;
}

export interface ClientOptions {
  /** The server's base URL, `http://host:port` or `https://host:port`. */
  url: string;
  /** Local state: identity, sessions, prekeys, outbox, processed message ids. Created if missing. */
  stateDir: string;
  /** Reconnection backoff bounds (full jitter) [KAL]. Defaults 1,000 and 60,000 ms. */
  minReconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  /** One-time prekeys to keep uploaded; the library tops up when the server says they run low. Default 100. */
  preKeyBatch?: number;
  /** Seconds after which the signed prekey is rotated. Default 7 days. */
  signedPreKeyRotationSec?: number;
  /** Called with each received message; the item is acknowledged only after this resolves. */
  onMessage?: (message: ReceivedMessage) => Promise<void> | void;
}

export interface ReceivedMessage {
  messageId: string;
  from: Address;
  /** The decrypted content. */
  plaintext: Uint8Array;
  /** When the server accepted the message (ms since the epoch). */
  serverTime: number;
}

/** The ticks of a message this device sent: sent (server has it), delivered (a device of the peer has it), read. */
export type Tick = 'pending' | 'sent' | 'delivered' | 'read';

export interface ReceiptEvent {
  messageId: string;
  status: Exclude<Tick, 'pending'>;
  /** The device that received or read the message; absent for `sent`. */
  by?: Address;
}

export interface PresenceEvent {
  userId: string;
  status: 'online' | 'offline';
  lastSeenAt?: number;
}

export interface TypingEvent {
  from: Address;
  state: 'started' | 'stopped';
}

export interface ClientEvents {
  /** A session with the server is open (after welcome). */
  connected: [];
  /** The session ended; the library reconnects unless closed or the close code forbids it (4403, 4409). */
  disconnected: [info: { code: number; reason: string; willReconnect: boolean }];
  /** The backlog waiting at connect time has been delivered. */
  caughtUp: [];
  message: [message: ReceivedMessage];
  receipt: [receipt: ReceiptEvent];
  presence: [presence: PresenceEvent];
  typing: [typing: TypingEvent];
  /** Something went wrong that the library handled (a message it could not decrypt, a refused send, ...). */
  warning: [warning: { code: string; message: string }];
}

export interface MessagingClient {
  readonly address: Address;
  readonly username: string;
  /** Opens the session and keeps it open (reconnecting with backoff) until `close`. Resolves on the first welcome. */
  connect(): Promise<void>;
  close(): Promise<void>;
  /** The userId behind a username, or undefined. */
  lookup(username: string): Promise<string | undefined>;
  /** Encrypts for every device of `to` and queues the message; resolves with its id once it is in the outbox. */
  send(to: string, plaintext: string | Uint8Array): Promise<{ messageId: string }>;
  /** The current tick of a message this device sent. */
  tickOf(messageId: string): Tick | undefined;
  /** Sends read receipts for messages received from `from` [RCP-13]. */
  markRead(from: Address, messageIds: string[]): Promise<void>;
  subscribePresence(userIds: string[]): Promise<void>;
  typing(to: string, state: 'started' | 'stopped'): void;
  /** A single-use code with which another device can join this account. */
  createLinkCode(): Promise<{ code: string; expiresAt: number }>;
}
