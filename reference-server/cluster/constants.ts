// The timing constants of a service of several processes (cluster/). Each is a trade-off; the defaults suit processes
// on one host or a LAN sharing one Redis deployment.

/**
 * How long a process stays in the service without renewing its lease (renewed every third of it). When a process
 * dies without closing its sessions (SIGKILL, a host crash), the others release its claims once the lease has
 * expired, within one more reaper round (half the lease): until then its users still count as online and a hello
 * of one of its devices waits for no answer from it. Shorter: stale presence ends sooner; longer: a process that
 * stalls (a long GC pause, Redis unreachable) is less often declared gone while it still works. A process that
 * finds it was declared gone ends its sessions with SERVER_RESTART so that their clients claim again.
 */
export const DEFAULT_LEASE_TTL_MS = 10_000;
export const MIN_LEASE_TTL_MS = 1_000;

/**
 * [DLV-34] How long a hello waits for the process holding the device's old session to confirm that it sent
 * SESSION_REPLACED. A process that is connected to Redis answers within a round trip; past this the process is taken
 * to be gone (its lease expires soon) and the new session goes ahead.
 */
export const REPLACE_ACK_TIMEOUT_MS = 3_000;

/**
 * How long one Redis command of the bus may take before it fails (and the request that needed it is answered
 * TEMPORARILY_UNAVAILABLE or INTERNAL_ERROR, never with a false success). With `appendfsync always` a write waits
 * for an fsync, so this leaves room for a slow disk.
 */
export const BUS_COMMAND_TIMEOUT_MS = 3_000;

/** How long `start` waits for Redis before the server gives up starting. */
export const BUS_CONNECT_TIMEOUT_MS = 10_000;

/** Reconnection delays to Redis: 100 ms more for each failed attempt, at most this. */
export const BUS_MAX_RECONNECT_DELAY_MS = 1_000;

/**
 * [IDN-23] A device's authentication time is shared with the other processes at most this often per process: a
 * device list on another process may show a time up to this much older than the latest authentication. Without it
 * every authenticated HTTP request would cost a Redis write (and an fsync).
 */
export const DEVICE_SEEN_RESOLUTION_MS = 1_000;
