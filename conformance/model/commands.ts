// The commands of the model-based delivery property (fast-check `fc.commands`, after dubzzz/fast-check's
// src/check/model/): tiny classes, each with a precondition on the model (`check`), an effect on the real server
// through the driver (`run`), and a `toString()` that reads as one line of a script, so that a shrunk counterexample
// reads like the scenario it is. The model only tracks what the preconditions need: who is connected, who withholds
// acknowledgements, how many messages each device sent, how many restarts happened; the checker judges the outcome.
import fc from 'fast-check';
import { deviceLabel, USER_LABELS, type Driver } from './driver.ts';

export interface Model {
  /** Devices per user: [2, 1] is user a with a1 and a2, user b with b1. */
  users: readonly number[];
  connected: Set<string>;
  withholding: Set<string>;
  /** Messages each device has sent so far (resends pick one of them). */
  sent: Map<string, number>;
  restarts: number;
  /** Messages sent since the scenario began or the server last restarted (a restart before any is not worth its time). */
  sentSinceRestart: number;
  /** Restarts a run may contain: 0 where the server cannot be restarted. */
  maxRestarts: number;
}

export type ModelCommand = fc.AsyncCommand<Model, Driver>;

/** The state a scenario starts in: every device connected (Driver.start) and acknowledging on arrival. */
export function initialModel(users: readonly number[], maxRestarts: number): Model {
  return { users, connected: new Set(deviceLabels(users)), withholding: new Set(), sent: new Map(), restarts: 0, sentSinceRestart: 0, maxRestarts };
}

/** Every device label of the topology, in order: a1, a2, b1, … */
export function deviceLabels(users: readonly number[]): string[] {
  return users.flatMap((devices, u) => Array.from({ length: devices }, (_, d) => deviceLabel(u, d)));
}

/**
 * Commands name devices and users by a number that the topology resolves (modulo its size), so that every generated
 * command names a device that exists, whatever the topology shrinks to.
 */
function deviceOf(m: Readonly<Model>, ref: number): string {
  const labels = deviceLabels(m.users);
  return labels[ref % labels.length]!;
}

function userOf(m: Readonly<Model>, ref: number): string {
  return USER_LABELS[ref % m.users.length]!;
}

function messageIdOf(device: string, n: number): string {
  return `msg-${device}-${String(n).padStart(3, '0')}`;
}

/** A command about one device, named by a number the topology resolves; `device` is its label once it ran. */
abstract class DeviceCommand implements ModelCommand {
  device = '';
  constructor(readonly ref: number) {}
  abstract check(m: Readonly<Model>): boolean;
  abstract run(m: Model, r: Driver): Promise<void>;
  protected abstract describe(device: string): string;
  protected resolve(m: Readonly<Model>): string {
    this.device = deviceOf(m, this.ref);
    return this.device;
  }
  toString(): string {
    return this.describe(this.device || `device#${this.ref}`);
  }
}

/** Device `device` opens a session (hello → welcome). */
export class Connect extends DeviceCommand {
  check(m: Readonly<Model>): boolean {
    return !m.connected.has(deviceOf(m, this.ref));
  }
  async run(m: Model, r: Driver): Promise<void> {
    const device = this.resolve(m);
    await r.step(this.toString(), () => r.connect(device));
    m.connected.add(device);
  }
  protected describe(device: string): string {
    return `connect ${device}`;
  }
}

/** The device closes its connection (`close`: a Close frame) or vanishes (`drop`: the TCP connection just ends). */
export class Disconnect extends DeviceCommand {
  constructor(
    ref: number,
    readonly how: 'close' | 'drop',
  ) {
    super(ref);
  }
  check(m: Readonly<Model>): boolean {
    return m.connected.has(deviceOf(m, this.ref));
  }
  async run(m: Model, r: Driver): Promise<void> {
    const device = this.resolve(m);
    await r.step(this.toString(), () => r.disconnect(device, this.how));
    m.connected.delete(device);
  }
  protected describe(device: string): string {
    return `disconnect ${device} (${this.how})`;
  }
}

/** The device connects again: after closing (`close`), or over its live session (`replace`, DLV-34). */
export class Reconnect extends DeviceCommand {
  constructor(
    ref: number,
    readonly how: 'close' | 'replace',
  ) {
    super(ref);
  }
  check(m: Readonly<Model>): boolean {
    return m.connected.has(deviceOf(m, this.ref));
  }
  async run(m: Model, r: Driver): Promise<void> {
    const device = this.resolve(m);
    await r.step(this.toString(), async () => {
      if (this.how === 'close') await r.disconnect(device, 'close');
      await r.connect(device);
    });
  }
  protected describe(device: string): string {
    return `reconnect ${device} (${this.how})`;
  }
}

/** The device sends `count` new messages to a user (every device of it but the sender), pipelined, and awaits the answers. */
export class Send extends DeviceCommand {
  private to = '';
  private first = 0;
  constructor(
    ref: number,
    readonly toRef: number,
    readonly count: number,
  ) {
    super(ref);
  }
  check(m: Readonly<Model>): boolean {
    const device = deviceOf(m, this.ref);
    if (!m.connected.has(device)) return false;
    const to = userOf(m, this.toRef);
    return to !== device[0] || m.users[USER_LABELS.indexOf(to as (typeof USER_LABELS)[number])]! >= 2; // to one's own user: needs another device (MSG-8)
  }
  async run(m: Model, r: Driver): Promise<void> {
    const device = this.resolve(m);
    this.to = userOf(m, this.toRef);
    this.first = (m.sent.get(device) ?? 0) + 1;
    m.sent.set(device, this.first + this.count - 1);
    m.sentSinceRestart += this.count;
    await r.step(this.toString(), async () => {
      await r.send(device, this.to, this.count);
    });
  }
  protected describe(device: string): string {
    if (this.first === 0) return `send ${device} -> user#${this.toRef} (${this.count})`;
    const ids = Array.from({ length: this.count }, (_, i) => messageIdOf(device, this.first + i));
    return `send ${device} -> ${this.to}: ${ids.join(', ')}`;
  }
}

/** The device sends one of its earlier messages again, same messageId and envelopes (a client unsure of the outcome, MSG-19). */
export class Resend extends DeviceCommand {
  private messageId = '';
  constructor(
    ref: number,
    readonly pick: number,
  ) {
    super(ref);
  }
  check(m: Readonly<Model>): boolean {
    const device = deviceOf(m, this.ref);
    return m.connected.has(device) && (m.sent.get(device) ?? 0) > 0;
  }
  async run(m: Model, r: Driver): Promise<void> {
    const device = this.resolve(m);
    this.messageId = messageIdOf(device, (this.pick % m.sent.get(device)!) + 1);
    await r.step(this.toString(), () => r.resend(device, this.messageId));
  }
  protected describe(device: string): string {
    return `resend ${device} ${this.messageId || `#${this.pick}`}`;
  }
}

/** A withholding device acknowledges what it holds: everything (`ack upTo`) or every other item (`ack seqs`). */
export class Ack extends DeviceCommand {
  constructor(
    ref: number,
    readonly which: 'all' | 'some',
  ) {
    super(ref);
  }
  check(m: Readonly<Model>): boolean {
    const device = deviceOf(m, this.ref);
    return m.connected.has(device) && m.withholding.has(device);
  }
  async run(m: Model, r: Driver): Promise<void> {
    const device = this.resolve(m);
    await r.step(this.toString(), () => r.acknowledge(device, this.which));
  }
  protected describe(device: string): string {
    return `ack ${device} (${this.which})`;
  }
}

/** The device stops acknowledging on arrival (its items stay in flight and come again on its next session). */
export class Withhold extends DeviceCommand {
  check(m: Readonly<Model>): boolean {
    return !m.withholding.has(deviceOf(m, this.ref));
  }
  async run(m: Model, r: Driver): Promise<void> {
    const device = this.resolve(m);
    await r.step(this.toString(), async () => r.withhold(device));
    m.withholding.add(device);
  }
  protected describe(device: string): string {
    return `withhold ${device}`;
  }
}

/** The device acknowledges on arrival again, starting with what it holds. */
export class AutoAck extends DeviceCommand {
  check(m: Readonly<Model>): boolean {
    return m.withholding.has(deviceOf(m, this.ref));
  }
  async run(m: Model, r: Driver): Promise<void> {
    const device = this.resolve(m);
    await r.step(this.toString(), () => r.autoAck(device));
    m.withholding.delete(device);
  }
  protected describe(device: string): string {
    return `auto-ack ${device}`;
  }
}

/** The server under test is killed and started again (ctx.restartServer(): a crash); every session ends. */
export class Restart implements ModelCommand {
  check(m: Readonly<Model>): boolean {
    return m.restarts < m.maxRestarts && m.sentSinceRestart > 0;
  }
  async run(m: Model, r: Driver): Promise<void> {
    await r.step(this.toString(), () => r.restart());
    m.restarts++;
    m.sentSinceRestart = 0;
    m.connected.clear();
  }
  toString(): string {
    return 'restart (crash)';
  }
}

/** Users per run and devices per user: two or three users with one or two devices each. */
export const topologyArbitrary: fc.Arbitrary<number[]> = fc.array(fc.integer({ min: 1, max: 2 }), { minLength: 2, maxLength: USER_LABELS.length });

/** The command arbitraries, weighted by repetition (sends most). */
export function commandArbitraries(options: { restarts: boolean }): Array<fc.Arbitrary<ModelCommand>> {
  const device = fc.nat(2 * USER_LABELS.length - 1);
  const send = fc.tuple(device, fc.nat(USER_LABELS.length - 1), fc.integer({ min: 1, max: 3 })).map(([d, to, n]) => new Send(d, to, n));
  const arbitraries: Array<fc.Arbitrary<ModelCommand>> = [
    send,
    send,
    send,
    device.map((d) => new Connect(d)),
    fc.tuple(device, fc.constantFrom('close' as const, 'drop' as const)).map(([d, how]) => new Disconnect(d, how)),
    fc.tuple(device, fc.constantFrom('close' as const, 'replace' as const)).map(([d, how]) => new Reconnect(d, how)),
    fc.tuple(device, fc.nat(7)).map(([d, pick]) => new Resend(d, pick)),
    fc.tuple(device, fc.constantFrom('all' as const, 'some' as const)).map(([d, which]) => new Ack(d, which)),
    device.map((d) => new Withhold(d)),
    device.map((d) => new AutoAck(d)),
  ];
  // With restarts, one command in four or so is a crash (each is skipped until something was sent since the last).
  if (options.restarts) arbitraries.push(...Array.from({ length: 3 }, () => fc.constant(new Restart())));
  return arbitraries;
}
