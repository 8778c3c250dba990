// Keepalive of one session (sections 6.1 and 6.2): any received frame, data or control, counts as life. Half-way
// through idleTimeoutMs of silence the server sends a `ping` [KAL-3]; its `pong`, like any frame, keeps a live client's
// session open. After idleTimeoutMs of silence the session ends with IDLE_TIMEOUT [KAL-5].
//
// One timer per session, re-armed for the next deadline rather than reset on every frame, so a busy session costs
// one clock read per frame.

export interface KeepaliveHost {
  now: () => number;
  idleTimeoutMs: number;
  /** Sends a server `ping` with this id. */
  ping: (id: string) => void;
  /** The session has been silent for idleTimeoutMs. */
  idle: () => void;
}

export class Keepalive {
  private timer: NodeJS.Timeout | undefined;
  private lastReceivedAt: number;
  /**
   * A ping went out and nothing has arrived since. A flag, not a comparison of times: a pong that arrives within the
   * millisecond of its ping (loopback, a fast client) has the same time as the ping, and must still count as an answer.
   */
  private awaitingAnswer = false;
  private pings = 0;
  private stopped = false;

  constructor(private readonly host: KeepaliveHost) {
    this.lastReceivedAt = host.now();
  }

  /** A frame arrived (any kind). */
  touch(): void {
    this.lastReceivedAt = this.host.now();
    this.awaitingAnswer = false;
  }

  /** Starts watching; call once the session is open. */
  start(): void {
    this.stopped = false;
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    const idle = this.host.idleTimeoutMs;
    const pingAt = this.awaitingAnswer ? Infinity : this.lastReceivedAt + Math.floor(idle / 2);
    const next = Math.min(pingAt, this.lastReceivedAt + idle);
    this.timer = setTimeout(() => this.check(), Math.max(1, next - this.host.now()));
  }

  private check(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const idle = this.host.idleTimeoutMs;
    const now = this.host.now();
    const silent = now - this.lastReceivedAt;
    if (silent >= idle) {
      this.stopped = true;
      this.host.idle();
      return;
    }
    if (silent >= Math.floor(idle / 2) && !this.awaitingAnswer) {
      this.awaitingAnswer = true;
      this.pings += 1;
      this.host.ping(`srv.${this.pings}`);
    }
    this.schedule();
  }
}
