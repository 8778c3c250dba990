// Every timing and size the chat UI uses, in one place, each with its trade-off. The protocol's own limits live in
// spec/limits.json and are the library's business; these only shape what the terminal shows and when.

/** [PRS-15] While the user keeps typing, repeat `started` this often. */
export const TYPING_REPEAT_MS = 10_000;

/**
 * Quiet time after the last keystroke before we send `stopped`. Shorter feels snappier to the peer but costs more
 * frames against the server's `typingPerMinute` (spec default 60), which silently drops the excess (PRS-13).
 */
export const TYPING_IDLE_MS = 4_000;

/** [PRS-15] A received `started` counts as `stopped` once this long passes without another typing frame. */
export const TYPING_EXPIRY_MS = 15_000;

/**
 * How long the first connection may take before `tickwire chat` gives up with exit 2. Later disconnects are shown and
 * the library reconnects by itself; only the start has to fail fast so a mistyped --url does not hang a script.
 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;

/** After cleanup on exit, the process gets this long to drain before it is ended anyway (an unref'd timer). */
export const EXIT_GRACE_MS = 3_000;

/** How long `close()` of the library may take on exit before we stop waiting for it. */
export const CLOSE_TIMEOUT_MS = 5_000;

/**
 * Sent messages whose ticks the screen follows. Older ones are forgotten (their later receipts show up like those of
 * an earlier run: one status line each); the library itself remembers ticks much longer (MAX_TICKS).
 */
export const MAX_FOLLOWED_MESSAGES = 1_000;

/** Device name used when --device-name is not given. */
export const DEFAULT_DEVICE_NAME = 'tickwire chat';

/** Marker of the chat's plaintext format (see format.ts): a version number inside the JSON, not a protocol field. */
export const CHAT_FORMAT_VERSION = 1;

/** Longest message text the chat accepts from the user, in UTF-16 code units; the envelope limit is far larger. */
export const MAX_TEXT_LENGTH = 4_000;
