// Assertions in two layers (STYLE.md, after matrix-org/complement): `should.*` returns a Mismatch (or undefined) so
// that retry loops can poll, `must.*` throws a CaseFailure carrying the requirement ID, its sentence, Expected and
// Actual. Every assertion names the requirement it enforces: there is no assertion without a citation.
import { isDeepStrictEqual } from 'node:util';
import { errorSpec, type ServerFrame } from '../spec/index.ts';
import type { HttpResult } from '../reference-client/wire/http.ts';
import { CaseFailure, show } from './case.ts';

export interface Mismatch {
  requirementId: string;
  expected: string;
  actual: string;
  what?: string;
}

export function toFailure(m: Mismatch): CaseFailure {
  return new CaseFailure(m.requirementId, m.expected, m.actual, m.what);
}

function mismatch(requirementId: string, expected: string, actual: string, what?: string): Mismatch {
  return what === undefined ? { requirementId, expected, actual } : { requirementId, expected, actual, what };
}

/** The error object of an HTTP error body, if it has one. */
export function httpErrorOf(result: HttpResult): { code?: unknown; message?: unknown; details?: unknown; retryAfterMs?: unknown } | undefined {
  const body = result.body as { error?: unknown } | undefined;
  if (typeof body !== 'object' || body === null || typeof body.error !== 'object' || body.error === null) return undefined;
  return body.error as { code?: unknown };
}

function describeHttp(result: HttpResult): string {
  return `HTTP ${result.status} ${show(result.body)}`;
}

function describeFrame(frame: unknown): string {
  return show(frame);
}

export const should = {
  /** `actual` deep-equals `expected`. */
  equal(actual: unknown, expected: unknown, requirementId: string, what?: string): Mismatch | undefined {
    return isDeepStrictEqual(actual, expected) ? undefined : mismatch(requirementId, show(expected), show(actual), what);
  },

  /** A condition, with the words for Expected and Actual when it does not hold. */
  hold(condition: boolean, requirementId: string, expected: string, actual: unknown, what?: string): Mismatch | undefined {
    return condition ? undefined : mismatch(requirementId, expected, show(actual), what);
  },

  /** An HTTP answer with this status. */
  status(result: HttpResult, status: number, requirementId: string, what?: string): Mismatch | undefined {
    return result.status === status ? undefined : mismatch(requirementId, `HTTP ${status}`, describeHttp(result), what);
  },

  /**
   * An HTTP error answer with this status and code; the status must also be the one the registry gives for the code
   * (ERR-1), which the case's own expectation already encodes.
   */
  httpError(result: HttpResult, status: number, code: string, requirementId: string, what?: string): Mismatch | undefined {
    const registry = errorSpec(code);
    if (registry?.httpStatus !== undefined && registry.httpStatus !== status) {
      throw new RangeError(`case bug: the registry gives ${code} HTTP ${registry.httpStatus}, not ${status}`);
    }
    const error = httpErrorOf(result);
    if (result.status !== status || error?.code !== code) {
      return mismatch(requirementId, `HTTP ${status} ${code}`, describeHttp(result), what);
    }
    return undefined;
  },

  /** A frame of this type. */
  frameType<T extends ServerFrame['type']>(frame: ServerFrame, type: T, requirementId: string, what?: string): Mismatch | undefined {
    return frame.type === type ? undefined : mismatch(requirementId, `a ${type} frame`, describeFrame(frame), what);
  },

  /**
   * An `error` frame with this code; `id` a string: it must echo that id; `id` null: it must carry no id.
   */
  errorFrame(frame: ServerFrame, code: string, requirementId: string, id?: string | null, what?: string): Mismatch | undefined {
    const idText = id === undefined ? '' : id === null ? ' without id' : ` with id ${id}`;
    const expected = `error ${code}${idText}`;
    if (frame.type !== 'error' || frame.code !== code) return mismatch(requirementId, expected, describeFrame(frame), what);
    if (id === null && frame.id !== undefined) return mismatch(requirementId, expected, describeFrame(frame), what);
    if (typeof id === 'string' && frame.id !== id) return mismatch(requirementId, expected, describeFrame(frame), what);
    return undefined;
  },
};

type Should = typeof should;
type Must = { [K in keyof Should]: (...args: Parameters<Should[K]>) => void };

function throwing<K extends keyof Should>(key: K): Must[K] {
  const fn = should[key] as (...args: unknown[]) => Mismatch | undefined;
  return ((...args: unknown[]) => {
    const m = fn(...args);
    if (m) throw toFailure(m);
  }) as Must[K];
}

/** The failing layer: each helper throws a CaseFailure where the `should` one returns a Mismatch. */
export const must: Must & {
  /** Fails unconditionally. */
  fail(requirementId: string, expected: string, actual: unknown, what?: string): never;
} = {
  equal: throwing('equal'),
  hold: throwing('hold'),
  status: throwing('status'),
  httpError: throwing('httpError'),
  frameType: throwing('frameType'),
  errorFrame: throwing('errorFrame'),
  fail(requirementId: string, expected: string, actual: unknown, what?: string): never {
    throw new CaseFailure(requirementId, expected, show(actual), what);
  },
};

/** Narrows after `must.frameType`: TypeScript cannot see through the throwing helper. */
export function as<T extends ServerFrame['type']>(frame: ServerFrame, type: T, requirementId: string, what?: string): Extract<ServerFrame, { type: T }> {
  must.frameType(frame, type, requirementId, what);
  return frame as Extract<ServerFrame, { type: T }>;
}
