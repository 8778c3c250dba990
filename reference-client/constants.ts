// Every limit and default of the messaging library in one place, each with its trade-off. Server limits are never
// hard-coded here: the library honours the values of the current session's `welcome` [LIM-6] and, before the first
// welcome, the allowed minimums of spec/limits.json [LIM-7] (see `limitsBeforeWelcome` in session-limits.ts).

/** [KAL-9] Backoff bounds: the delay before attempt n is uniform in [0, min(max, min × 2^n)]. */
export const DEFAULT_MIN_RECONNECT_DELAY_MS = 1_000;
export const DEFAULT_MAX_RECONNECT_DELAY_MS = 60_000;
/** [KAL-9] The attempt counter is reset only after a session stayed open this long. */
export const STABLE_SESSION_MS = 60_000;
/** [KAL-10] After close 1012 an extra random delay in [0, this] before the first attempt. */
export const DEFAULT_SERVER_RESTART_EXTRA_DELAY_MS = 5_000;

/** One-time prekeys to keep uploaded (ClientOptions.preKeyBatch). */
export const DEFAULT_PREKEY_BATCH = 100;
/**
 * Registration carries at most this many one-time prekeys: the reference `prekeyBatchMax`. A server with a smaller
 * `prekeyBatchMax` answers 400, and registration is retried once without one-time prekeys (they are uploaded after
 * the first welcome instead).
 */
export const REGISTRATION_PREKEYS_MAX = 100;
/** [PKY-4] Signed prekey rotation period (ClientOptions.signedPreKeyRotationSec). */
export const DEFAULT_SIGNED_PREKEY_ROTATION_SEC = 7 * 24 * 60 * 60;
/** How often a running client checks whether its signed prekey is due for rotation. */
export const ROTATION_CHECK_INTERVAL_MS = 60 * 60 * 1000;
/**
 * Private one-time prekeys kept at most. Keys handed out in bundles whose initiator never sent anything are never
 * consumed; beyond this number the oldest ids are forgotten (a message naming one then fails with E2E_UNKNOWN_PREKEY).
 */
export const MAX_LOCAL_ONE_TIME_PREKEYS = 4_000;

/**
 * [DLV-29] [DLV-30] Processed (sender, messageId) keys remembered for deduplication. The spec asks for
 * max(retentionSec, dedupeWindowSec) (30 days by default); a count bound keeps memory and the log small at the
 * price of forgetting the oldest ids of a device that receives more than this many messages in that period.
 */
export const MAX_PROCESSED_IDS = 20_000;
/** Ticks of sent messages remembered (oldest forgotten first). */
export const MAX_TICKS = 20_000;
/** An append-only log is rewritten (compacted) once it holds this many times its live entries. */
export const LOG_COMPACTION_FACTOR = 2;

/** [MSG-22] STALE_DEVICES rounds for one message before it is given up with a warning. */
export const MAX_STALE_ROUNDS = 5;
/** Delay before retrying a send refused with a temporary error and no retryAfterMs [MSG-19]. */
export const SEND_RETRY_DELAY_MS = 1_000;
/** Requests held back from `maxPendingRequests` for pings and read receipts, so sends never starve them [TRN-36]. */
export const RESERVED_PENDING_REQUESTS = 4;
/** Milliseconds to wait for an answer to a request before treating its outcome as unknown [TRN-33]. */
export const REQUEST_TIMEOUT_MS = 15_000;

/** messageId: 16 random bytes in base64url, 22 characters of ^[A-Za-z0-9_-]{8,64}$. */
export const MESSAGE_ID_BYTES = 16;
/** [AUT-1] 32 random bytes give a 43-character base64url secret. */
export const SECRET_BYTES = 32;
