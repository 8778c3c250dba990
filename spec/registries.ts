// The spec's registries as typed data: error codes, limits, HTTP routes and the requirement index.
import { join } from 'node:path';
import { readJson, SPEC_DIR } from './schema-files.ts';
import type { ErrorCode, LimitName, Limits } from './types.gen.ts';
import type { Requirement } from './tools/requirements.ts';

export type Transport = 'http' | 'ws';

export interface ErrorSpec {
  code: ErrorCode;
  transports: Transport[];
  /** HTTP status when the error is an HTTP answer. */
  httpStatus?: number;
  /** WebSocket only: the session is closed after the error frame. */
  fatal?: boolean;
  /** WebSocket only: the close code used when the error is fatal. */
  closeCode?: number;
  when: string;
}

export interface LimitSpec {
  name: LimitName;
  unit: string;
  default: number;
  minimum: number;
  maximum?: number;
  /** Whether the server advertises the limit in `welcome.limits`. */
  advertised: boolean;
  errorCode?: ErrorCode;
  description: string;
}

export interface RouteSpec {
  name: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Path template with `{param}` placeholders, e.g. `/v1/users/{userId}/keys`. */
  path: string;
  auth: 'none' | 'device' | 'link-code';
  /** Request body schema under spec/schemas, if the route takes a body. */
  request?: string;
  success: { status: number; schema: string | null };
  errors: ErrorCode[];
}

/** One entry of spec/requirements.json: a parsed requirement without its line number in PROTOCOL.md. */
export type RequirementEntry = Omit<Requirement, 'line'>;

export const errors: readonly ErrorSpec[] = Object.freeze(
  (readJson(join(SPEC_DIR, 'errors.json')) as { errors: ErrorSpec[] }).errors,
);
export const limits: readonly LimitSpec[] = Object.freeze(
  (readJson(join(SPEC_DIR, 'limits.json')) as { limits: LimitSpec[] }).limits,
);
export const routes: readonly RouteSpec[] = Object.freeze(
  (readJson(join(SPEC_DIR, 'routes.json')) as { routes: RouteSpec[] }).routes,
);
export const requirements: readonly RequirementEntry[] = Object.freeze(
  (readJson(join(SPEC_DIR, 'requirements.json')) as { requirements: RequirementEntry[] }).requirements,
);

const errorByCode = new Map(errors.map((e) => [e.code as string, e]));
const requirementById = new Map(requirements.map((r) => [r.id, r]));

/** The registry entry for `code`, or undefined for a code the registry does not know. */
export function errorSpec(code: string): ErrorSpec | undefined {
  return errorByCode.get(code);
}

export function requirement(id: string): RequirementEntry | undefined {
  return requirementById.get(id);
}

/** The reference defaults of every advertised limit, shaped as `welcome.limits`. */
export function defaultLimits(): Limits {
  const out: Record<string, number> = {};
  for (const limit of limits) if (limit.advertised) out[limit.name] = limit.default;
  return out as unknown as Limits;
}
