// Keeping a session open [KAL]: connect, and after every close decide whether and when to connect again.
//  - The delay before attempt n is drawn uniformly from [0, min(max, min × 2^n)] (full jitter) [KAL-8] [KAL-9];
//    n is reset only after a session stayed open STABLE_SESSION_MS [KAL-9].
//  - After 1012 (SERVER_RESTART) an extra random delay is added [KAL-10].
//  - Never after 4403 DEVICE_REMOVED [KAL-11] or 4409 SESSION_REPLACED [DLV-38], nor after a hello refused with
//    AUTH_FAILED [KAL-12]. Every other close, including unknown codes [ERR-14], reconnects.
// The state machine: idle → connecting → open → waiting → connecting … → stopped.
import { secureRandom } from './e2e/index.ts';
import { STABLE_SESSION_MS } from './constants.ts';
import { ClientError } from './errors.ts';
import { WireError, type CloseInfo, type Connection } from './wire/connection.ts';

export type LinkState = 'idle' | 'connecting' | 'open' | 'waiting' | 'stopped';

/** Why the loop must stop for good after this close, or undefined when it reconnects. */
export function fatalClose(info: CloseInfo): ClientError | undefined {
  if (info.code === 4403) return new ClientError('DEVICE_REMOVED', 'this device was removed from its account'); // [KAL-11]
  if (info.code === 4409) return new ClientError('SESSION_REPLACED', 'another instance with these credentials connected'); // [DLV-38]
  return undefined;
}

/** A uniform float in [0, 1) from the CSPRNG. */
export const uniform = (): number => {
  const b = secureRandom(4);
  return (((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0) / 2 ** 32;
};

export class Backoff {
  attempt = 0;

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = uniform,
  ) {}

  /** [KAL-9] The delay before the next attempt; grows the bound for the one after. */
  next(): number {
    const bound = Math.min(this.maxMs, this.minMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.floor(this.random() * bound);
  }

  /** A session that stayed open long enough resets the growth [KAL-9]. */
  sessionEnded(openForMs: number): void {
    if (openForMs >= STABLE_SESSION_MS) this.attempt = 0;
  }
}

export interface ReconnectorOptions {
  open(): Promise<Connection>;
  /** Called with each new session (after welcome), before the next macrotask. */
  onSession(connection: Connection): void;
  onClosed(info: CloseInfo, willReconnect: boolean): void;
  onAttemptFailed(error: unknown): void;
  backoff: Backoff;
  restartExtraDelayMs: number;
  random?: () => number;
}

export class Reconnector {
  state: LinkState = 'idle';
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private current: Connection | undefined;

  constructor(private readonly options: ReconnectorOptions) {}

  /** Runs the loop; resolves on the first welcome, rejects if the loop stops before one. */
  start(): Promise<void> {
    if (this.state === 'stopped') this.state = 'idle'; // an explicit restart after a final close
    return new Promise((resolve, reject) => {
      let first = true;
      void this.run(
        () => {
          if (first) resolve();
          first = false;
        },
        (error) => {
          if (first) reject(error);
          first = false;
        },
      );
    });
  }

  /** Stops the loop and closes the current connection. */
  async stop(): Promise<void> {
    this.state = 'stopped';
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.wake?.();
    if (this.current !== undefined) await this.current.close(1000, 'client closing');
  }

  /** Drops the current connection without a closing handshake; the loop reconnects as after a network failure. */
  drop(): void {
    this.current?.terminate();
  }

  /** A method, not a field read, because `stop()` changes the state while `run` awaits. */
  private stopped(): boolean {
    return this.state === 'stopped';
  }

  private sleep(ms: number): Promise<void> {
    if (this.state === 'stopped') return Promise.resolve();
    this.state = 'waiting';
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
    });
  }

  private async run(onWelcome: () => void, onStop: (error: Error) => void): Promise<void> {
    const { backoff } = this.options;
    const random = this.options.random ?? uniform;
    while (!this.stopped()) {
      this.state = 'connecting';
      let connection: Connection;
      try {
        connection = await this.options.open();
      } catch (error) {
        const refused = error instanceof WireError && error.frame?.type === 'error' ? error.frame.code : undefined;
        if (refused === 'AUTH_FAILED') {
          // [KAL-12] the same credentials would fail again.
          this.state = 'stopped';
          onStop(new ClientError('AUTH_FAILED', 'the server refused this device’s credentials'));
          return;
        }
        this.options.onAttemptFailed(error);
        await this.sleep(backoff.next()); // [KAL-8]
        continue;
      }
      if (this.stopped()) {
        await connection.close(1000, 'client closing');
        break;
      }
      this.current = connection;
      this.state = 'open';
      const openedAt = Date.now();
      this.options.onSession(connection);
      onWelcome();
      const info = await connection.closed;
      this.current = undefined;
      backoff.sessionEnded(Date.now() - openedAt);
      const fatal = fatalClose(info);
      const willReconnect = fatal === undefined && !this.stopped();
      this.options.onClosed(info, willReconnect);
      if (!willReconnect) {
        if (fatal !== undefined) onStop(fatal);
        this.state = 'stopped';
        break;
      }
      const extra = info.code === 1012 ? Math.floor(random() * this.options.restartExtraDelayMs) : 0; // [KAL-10]
      await this.sleep(extra + backoff.next());
    }
    onStop(new ClientError('CLOSED', 'the client was closed'));
  }
}
