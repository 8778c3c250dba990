// The open-loop scheduler. Send number i of a run is due at start + i × 1000 / rate milliseconds, fixed before the
// run begins, whether or not the server keeps up: a slow answer never delays the next send. Each send is handed its
// scheduled time, and every latency is measured from that time, not from the moment the send actually went out, so
// that time spent waiting behind a stalled server counts (the correction for coordinated omission).

export interface ScheduleOptions {
  /** Sends per second, > 0. */
  rate: number;
  /** performance.now() of send 0. */
  startAt: number;
  /** Nothing is scheduled at or after startAt + durationMs. */
  durationMs: number;
  /** At most this many sends (default unbounded: the duration decides). */
  maxCount?: number;
}

/** The fixed timetable of an open-loop run. */
export class Timetable {
  readonly rate: number;
  readonly startAt: number;
  readonly durationMs: number;
  /** How many sends the timetable holds: rate × duration, capped by maxCount. */
  readonly count: number;

  constructor(options: ScheduleOptions) {
    if (!(options.rate > 0) || !Number.isFinite(options.rate)) throw new RangeError(`rate must be a positive number (got ${options.rate})`);
    if (!(options.durationMs >= 0)) throw new RangeError(`durationMs must be >= 0 (got ${options.durationMs})`);
    if (options.maxCount !== undefined && !(Number.isInteger(options.maxCount) && options.maxCount >= 0)) throw new RangeError(`maxCount must be an integer >= 0 (got ${options.maxCount})`);
    this.rate = options.rate;
    this.startAt = options.startAt;
    this.durationMs = options.durationMs;
    const inDuration = Math.ceil((options.durationMs * options.rate) / 1000 - 1e-9);
    this.count = Math.max(0, Math.min(inDuration, options.maxCount ?? Infinity));
  }

  /** The scheduled time (performance.now() scale) of send `i`. */
  timeOf(i: number): number {
    return this.startAt + (i * 1000) / this.rate;
  }

  /** How many sends are due at time `now` (those with timeOf(i) <= now), at most `count`. */
  dueBy(now: number): number {
    if (now < this.startAt) return 0;
    return Math.min(this.count, Math.floor(((now - this.startAt) * this.rate) / 1000 + 1e-9) + 1);
  }
}

export interface OpenLoop {
  /** Resolves with the number of sends issued, once the timetable is exhausted or stop() was called. */
  done: Promise<number>;
  stop(): void;
}

/** The longest the loop sleeps between checks, so that a stop() or a busy event loop is noticed promptly. */
const MAX_SLEEP_MS = 50;

/**
 * Runs `timetable`: calls `send(i, scheduledAt)` for every send in order, each as soon as it is due. When the event
 * loop falls behind, the overdue sends go out in one burst with their original scheduled times.
 */
export function runOpenLoop(timetable: Timetable, send: (i: number, scheduledAt: number) => void, now: () => number = () => performance.now()): OpenLoop {
  let issued = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let finish: (n: number) => void = () => {};
  const done = new Promise<number>((resolve) => (finish = resolve));
  const tick = () => {
    timer = undefined;
    if (stopped) return;
    const due = timetable.dueBy(now());
    while (issued < due && !stopped) {
      const i = issued++;
      send(i, timetable.timeOf(i));
    }
    if (issued >= timetable.count || stopped) {
      stopped = true;
      finish(issued);
      return;
    }
    const wait = Math.min(MAX_SLEEP_MS, Math.max(0, timetable.timeOf(issued) - now()));
    timer = setTimeout(tick, wait);
  };
  if (timetable.count === 0) {
    stopped = true;
    finish(0);
  } else timer = setTimeout(tick, Math.max(0, Math.min(MAX_SLEEP_MS, timetable.startAt - now())));
  return {
    done,
    stop() {
      if (stopped) return;
      stopped = true;
      if (timer) clearTimeout(timer);
      finish(issued);
    },
  };
}
