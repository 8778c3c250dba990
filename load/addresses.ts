// Source addresses. One source address reaches one destination from at most ~28,000 ephemeral ports, so a run
// spreads its sockets over loopback addresses (all of 127.0.0.0/8 is local on Linux), about PER_ADDRESS each.
// Addresses left with sockets in TIME_WAIT by the previous run slow the next one down, so the automatic choice
// rotates: each run starts where the previous one stopped, remembered in a small file in the temporary directory.
import { readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Sockets per source address the tool aims for (well under the ~28,000 ephemeral ports of one address). */
export const PER_ADDRESS = 1000;
/** The hard ceiling per address: the default ephemeral port range 32768–60999. */
export const MAX_PER_ADDRESS = 28_000;
/** The automatic pool: 127.1.0.1 onwards (65,000 addresses), away from 127.0.0.1 where servers usually listen. */
const AUTO_POOL_SIZE = 65_000;
const ROTATION_FILE = join(tmpdir(), 'tickwire-load-addresses.json');

function toInt(address: string): number {
  return address.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

function toAddress(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Whether `host` (a hostname or address from a URL) is loopback. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
}

/** Parses `127.0.0.2-127.0.0.50`, `127.0.0.2,127.0.0.3` or a mix; throws RangeError on anything else. */
export function parseAddressList(text: string): string[] {
  const out: string[] = [];
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const [from, to] = part.split('-', 2) as [string, string | undefined];
    if (isIP(from) !== 4 || (to !== undefined && isIP(to) !== 4)) throw new RangeError(`'${part}' is not an IPv4 address or range`);
    const a = toInt(from);
    const b = to === undefined ? a : toInt(to);
    if (b < a) throw new RangeError(`range '${part}' runs backwards`);
    if (b - a >= AUTO_POOL_SIZE) throw new RangeError(`range '${part}' is too large`);
    for (let n = a; n <= b; n++) out.push(toAddress(n));
  }
  if (out.length === 0) throw new RangeError('no address given');
  return out;
}

function readRotation(): number {
  try {
    const value = (JSON.parse(readFileSync(ROTATION_FILE, 'utf8')) as { next?: unknown }).next;
    return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value % AUTO_POOL_SIZE : 0;
  } catch {
    return 0;
  }
}

/**
 * Chooses `needed` addresses: from `given` (rotated to start after the previous run's last one), or from the
 * automatic pool 127.1.0.1… when `given` is undefined. Records where the next run should start.
 */
export function chooseAddresses(needed: number, given?: string[]): string[] {
  const start = readRotation();
  let chosen: string[];
  if (given) {
    const offset = start % given.length;
    chosen = [...given.slice(offset), ...given.slice(0, offset)];
  } else {
    const base = toInt('127.1.0.1');
    chosen = Array.from({ length: needed }, (_, i) => toAddress(base + ((start + i) % AUTO_POOL_SIZE)));
  }
  try {
    writeFileSync(ROTATION_FILE, JSON.stringify({ next: (start + chosen.length) % AUTO_POOL_SIZE }));
  } catch {
    // Rotation is an optimisation; a read-only temporary directory only loses it.
  }
  return chosen;
}

/** Splits `addresses` over `workers`: contiguous slices when there are enough, otherwise shared round-robin. */
export function splitAddresses(addresses: string[], workers: number): string[][] {
  if (addresses.length === 0) return Array.from({ length: workers }, () => []);
  if (addresses.length < workers) return Array.from({ length: workers }, (_, w) => [addresses[w % addresses.length]!]);
  return Array.from({ length: workers }, (_, w) => addresses.slice(Math.floor((w * addresses.length) / workers), Math.floor(((w + 1) * addresses.length) / workers)));
}
