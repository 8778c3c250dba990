// Redelivery timing [DLV-21] [DLV-22]: an item in flight that is not acknowledged is delivered again with
// exponential backoff, for as long as the session lives.

export interface BackoffLimits {
  ackTimeoutMs: number;
  maxRedeliveryBackoffMs: number;
}

/**
 * [DLV-21] The k-th redelivery (k >= 1) is due min(ackTimeoutMs × 2^(k−1), maxRedeliveryBackoffMs) milliseconds after
 * the previous delivery of the item; k counts deliveries on the current session after the first, so it starts again
 * at 1 on a new session [DLV-24].
 */
export function redeliveryDelayMs(k: number, limits: BackoffLimits): number {
  if (!Number.isSafeInteger(k) || k < 1) throw new RangeError(`k must be an integer >= 1 (got ${k})`);
  // 2^(k−1) overflows nothing that matters: past 2^53 the min() takes the cap anyway.
  const doubled = limits.ackTimeoutMs * 2 ** Math.min(k - 1, 60);
  return Math.min(doubled, limits.maxRedeliveryBackoffMs);
}
