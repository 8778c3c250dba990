// The seqs delivered on one session, as a sorted list of closed intervals. A session's first deliveries go out in
// ascending seq order [DLV-7], and a queue's seqs are mostly contiguous, so a long session needs only a few
// intervals where a plain Set would grow with every item it ever delivered.

export class SeqSet {
  /** Disjoint, non-adjacent intervals [lo, hi], ascending. */
  private readonly intervals: Array<[number, number]> = [];

  get isEmpty(): boolean {
    return this.intervals.length === 0;
  }

  /** The highest seq in the set; 0 when it is empty. */
  get max(): number {
    const last = this.intervals[this.intervals.length - 1];
    return last === undefined ? 0 : last[1];
  }

  /** Adds a seq. Adding above the maximum (the usual case) is O(1); anything else is O(log n + n) at worst. */
  add(seq: number): void {
    if (!Number.isSafeInteger(seq) || seq < 1) throw new RangeError(`seq must be a positive integer (got ${seq})`);
    const last = this.intervals[this.intervals.length - 1];
    if (last === undefined || seq > last[1] + 1) {
      this.intervals.push([seq, seq]);
      return;
    }
    if (seq === last[1] + 1) {
      last[1] = seq;
      return;
    }
    if (this.has(seq)) return;
    const index = this.firstEndingAtOrAfter(seq - 1);
    const at = this.intervals[index];
    const before = this.intervals[index - 1];
    if (at !== undefined && at[0] === seq + 1) {
      at[0] = seq;
      if (before !== undefined && before[1] === seq - 1) {
        at[0] = before[0];
        this.intervals.splice(index - 1, 1);
      }
    } else if (at !== undefined && at[1] === seq - 1) {
      at[1] = seq;
      const next = this.intervals[index + 1];
      if (next !== undefined && next[0] === seq + 1) {
        at[1] = next[1];
        this.intervals.splice(index + 1, 1);
      }
    } else {
      this.intervals.splice(index, 0, [seq, seq]);
    }
  }

  has(seq: number): boolean {
    const interval = this.intervals[this.firstEndingAtOrAfter(seq)];
    return interval !== undefined && interval[0] <= seq;
  }

  /** Number of intervals held (for tests and metrics). */
  get intervalCount(): number {
    return this.intervals.length;
  }

  /** Index of the first interval whose upper end is >= seq (binary search); intervals.length when none is. */
  private firstEndingAtOrAfter(seq: number): number {
    let lo = 0;
    let hi = this.intervals.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.intervals[mid]![1] < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
