// The limits the library honours [LIM-6]: the values of the current session's `welcome`, or, before any welcome,
// the allowed minimum of each limit (spec/limits.json) [LIM-7], so a client that has not heard from the server never
// exceeds what any conforming server accepts.
import { limits as limitSpecs, type Limits } from '../spec/index.ts';

export function limitsBeforeWelcome(): Limits {
  const out: Record<string, number> = {};
  for (const spec of limitSpecs) if (spec.advertised) out[spec.name] = spec.minimum;
  return out as unknown as Limits; // every advertised limit is filled from the registry above
}

/** Bytes of a frame as it goes on the wire (UTF-8 of its JSON), for the maxFrameBytes check [TRN-20]. */
export function frameBytes(frame: unknown): number {
  return Buffer.byteLength(JSON.stringify(frame), 'utf8');
}
