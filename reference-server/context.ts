// What every part of the server shares: configuration, the store, metrics, the logger, the clock, and a small event
// hub through which the HTTP side tells the WebSocket side about things that concern a live session.
import type { EventEmitter } from 'node:events';
import type { ServerConfig } from './config.ts';
import type { DeviceAddress, Store } from './store/store.ts';
import type { AuthFailures } from './auth-throttle.ts';
import type { HttpRateLimits } from './http/rate-limit.ts';

export type Labels = Record<string, string>;

export interface Counter {
  inc(labels?: Labels, by?: number): void;
}
export interface Gauge {
  set(value: number, labels?: Labels): void;
}
export interface Histogram {
  observe(value: number, labels?: Labels): void;
}

/** A Prometheus registry: metric names are snake_case with the `tickwire_` prefix and a unit suffix. */
export interface Metrics {
  counter(name: string, help: string): Counter;
  gauge(name: string, help: string, collect?: () => number): Gauge;
  histogram(name: string, help: string, buckets: number[]): Histogram;
  /** The registry in the Prometheus text exposition format (version 0.0.4). */
  render(): string;
}

/**
 * Structured JSON logs, one object a line. Fields must never carry a message body, an envelope, a secret, a key or
 * a signature [SEC]: log identifiers and sizes instead.
 */
export interface Logger {
  debug(event: string, fields?: Record<string, unknown>): void;
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
}

/** Events between the HTTP API and the WebSocket sessions. */
export interface HubEvents {
  /** A device's one-time prekeys fell below the low-water mark after a bundle fetch [PKY-20]. */
  'prekeys-low': [device: DeviceAddress, remaining: number];
  /** A device was deleted: close its session with DEVICE_REMOVED [IDN]. */
  'device-removed': [device: DeviceAddress];
}

export interface ServerContext {
  config: ServerConfig;
  /** [SEC-8] Delays answers to repeated failed authentications from one address, on HTTP and in hello. */
  authThrottle: AuthFailures;
  /** The HTTP API's limits of section 6.5: this process's own, or shared through Redis by every process of a service. */
  rateLimits: HttpRateLimits;
  store: Store;
  metrics: Metrics;
  log: Logger;
  /** Milliseconds since the epoch; injectable so that time-based behaviour is testable. */
  now: () => number;
  hub: EventEmitter<HubEvents>;
}
