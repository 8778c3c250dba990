// Everything the server writes on one WebSocket goes through here: frame serialisation, the frames-out metric, and
// the three thresholds of flow control (section 6.4) on the socket's buffered bytes:
//
// - above `deliverHighWater`, no `deliver` frame is written: the pump waits for the buffer to drain, so a client that
//   reads slowly holds back delivery instead of filling server memory;
// - above `ephemeralHighWater`, `presence` and `typing` pushes are dropped [PRS-16];
// - above `slowConsumerBytes`, the session is closed with SLOW_CONSUMER (4429) [KAL-14].
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { ServerConfig } from '../config.ts';
import type { ServerFrame } from '../../spec/index.ts';
import type { SessionMetrics } from './session-metrics.ts';

export interface WriterThresholds {
  deliverHighWater: number;
  ephemeralHighWater: number;
  slowConsumerBytes: number;
}

/**
 * The thresholds, all derived from the configuration. [KAL-14] The slow-consumer threshold is at least
 * 4 × maxFrameBytes whatever `maxBufferedBytes` says; delivery pauses at a quarter of it (but always lets one whole
 * frame through) and ephemeral pushes stop at half of it.
 */
export function writerThresholds(config: ServerConfig): WriterThresholds {
  const frame = config.limits.maxFrameBytes;
  const slowConsumerBytes = Math.max(config.maxBufferedBytes, 4 * frame);
  return {
    slowConsumerBytes,
    ephemeralHighWater: Math.floor(slowConsumerBytes / 2),
    deliverHighWater: Math.max(frame, Math.floor(slowConsumerBytes / 4)),
  };
}

export class FrameWriter {
  private drainWaiters: Array<() => void> = [];
  private corked = false;
  private overflowed = false;
  /** Set once the connection stops writing anything but its final error (ERR-10). */
  private sealed = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly metrics: SessionMetrics,
    private readonly thresholds: WriterThresholds,
    private readonly onOverflow: () => void,
  ) {}

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  /**
   * Bytes of deliver frames the pump may write in one go once the buffer is at or below high water: another high
   * water's worth, so a burst of large items never takes the buffer past half the slow-consumer threshold and a client
   * that keeps reading is never closed for data the server chose to write at once [KAL-14].
   */
  get deliverBudget(): number {
    return this.thresholds.deliverHighWater;
  }

  /** Whether a deliver frame must wait for the buffer to drain. */
  get congested(): boolean {
    return this.ws.bufferedAmount > this.thresholds.deliverHighWater;
  }

  get writable(): boolean {
    return !this.sealed && this.ws.readyState === this.ws.OPEN;
  }

  /** Writes one frame; resolves false (and writes nothing) when the connection no longer takes frames. */
  send(frame: ServerFrame): boolean {
    return this.sendText(frame.type, JSON.stringify(frame));
  }

  /** Writes a frame serialised by the caller (the pump measures deliver frames before sending them). */
  sendText(type: string, text: string): boolean {
    if (!this.writable) return false;
    this.corkUntilNextTick();
    this.ws.send(text, { binary: false }, () => this.afterFlush());
    this.metrics.framesOut.inc({ type });
    this.checkOverflow();
    return true;
  }

  /** [PRS-16] Presence and typing pushes are dropped while the connection is congested. */
  sendEphemeral(frame: ServerFrame): boolean {
    if (!this.writable) return false;
    if (this.ws.bufferedAmount > this.thresholds.ephemeralHighWater) {
      this.metrics.ephemeralDropped.inc({ type: frame.type });
      return false;
    }
    return this.send(frame);
  }

  /**
   * Frames written in one tick leave in one write system call: the socket is corked on the first frame of a tick and
   * uncorked on the next. A busy session answers several send_ok, deliver and receipt frames per tick, and a syscall
   * per frame was a fifth of the server's CPU time. (`ws` keeps its socket in `_socket`; it has for many majors, and
   * without it this is a no-op.)
   */
  private corkUntilNextTick(): void {
    if (this.corked) return;
    const socket = (this.ws as unknown as { _socket?: Socket })._socket;
    if (!socket || socket.destroyed) return;
    socket.cork();
    this.corked = true;
    process.nextTick(() => {
      this.corked = false;
      socket.uncork();
    });
  }

  /** Writes the final error frame of a fatal error and refuses every frame after it [ERR-10]. */
  sendFinal(frame: ServerFrame): void {
    if (this.writable) {
      this.ws.send(JSON.stringify(frame), { binary: false }, () => this.afterFlush());
      this.metrics.framesOut.inc({ type: frame.type });
    }
    this.seal();
  }

  seal(): void {
    this.sealed = true;
    this.wakeDrainWaiters();
  }

  /** Resolves once the buffer is at or below the deliver high-water mark, or the connection stops writing. */
  whenDrained(): Promise<void> {
    if (!this.congested || !this.writable) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private afterFlush(): void {
    if (this.drainWaiters.length > 0 && (!this.congested || !this.writable)) this.wakeDrainWaiters();
  }

  private wakeDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const wake of waiters) wake();
  }

  private checkOverflow(): void {
    // [KAL-14] Too much data waiting to be written: the client is not reading.
    if (!this.overflowed && this.ws.bufferedAmount > this.thresholds.slowConsumerBytes) {
      this.overflowed = true;
      this.onOverflow();
    }
  }
}
