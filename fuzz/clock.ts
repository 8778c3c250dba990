// The fuzzer's own clock. An oracle's "no answer within 10 s" must be about the server, not about the fuzzer: when this
// process cannot run (a long garbage collection, a busy shared machine, a virtual machine paused by its host), every
// deadline it set expires at once, and its timers run before the answers waiting in its socket buffers are read. A
// long campaign on a shared machine saw that: nineteen "no answer" findings within one second of inputs, none of which
// reproduced. So deadlines here count only time during which this process was able to run: a watch timer notices
// gaps in its own schedule and those gaps are not counted. A server that stalls is still caught, since its stall is
// not a gap in this process.

/** How often the watch runs, and how late it may run before the delay counts as a stall. */
const PERIOD_MS = 20;
const SLACK_MS = 80;

let timer: NodeJS.Timeout | undefined;
let last = 0;
let stalledMs = 0;
let stalls = 0;
let longestMs = 0;

function watch(): void {
  const now = performance.now();
  const gap = now - last - PERIOD_MS;
  if (gap > SLACK_MS) {
    stalledMs += gap;
    stalls++;
    longestMs = Math.max(longestMs, gap);
  }
  last = now;
}

/** Starts the watch (idempotent). It does not keep the process alive. */
export function startStallWatch(): void {
  if (timer) return;
  last = performance.now();
  timer = setInterval(watch, PERIOD_MS);
  timer.unref();
}

/** Milliseconds of time during which this process could run, on performance.now()'s scale minus the stalls so far. */
export function activeNow(): number {
  const now = performance.now();
  if (!timer) return now;
  // A stall still under way (the watch has not run since it ended) counts too: a timer that fires right after one,
  // before the watch, must not see it as time the server had.
  const pending = now - last - PERIOD_MS;
  return now - stalledMs - (pending > SLACK_MS ? pending : 0);
}

/** What the watch saw: how often this process stalled, for how long in all and at most. */
export function stallReport(): { stalls: number; totalMs: number; longestMs: number } {
  return { stalls, totalMs: Math.round(stalledMs), longestMs: Math.round(longestMs) };
}

/**
 * Calls `fn` once `ms` of active time has passed. When the timer fires after a stall of this process, it is set
 * again for the time still owed, so that answers which arrived meanwhile are read first.
 */
export function activeTimeout(fn: () => void, ms: number): { clear(): void } {
  const deadline = activeNow() + ms;
  let handle: NodeJS.Timeout;
  const check = () => {
    const left = deadline - activeNow();
    if (left > 1) handle = setTimeout(check, left);
    else fn();
  };
  handle = setTimeout(check, ms);
  return { clear: () => clearTimeout(handle) };
}
