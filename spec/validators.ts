// Compiled ajv validators for every schema in spec/schemas, and frame dispatch by `type`.
//
// Every part of Tickwire that reads a frame or an HTTP body validates it here first, so that the schemas stay the
// one definition of what is well-formed.
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { loadSchemaFiles, schemaId } from './schema-files.ts';
import type { ClientFrame, ServerFrame } from './types.gen.ts';

// ajv-formats is published as CommonJS with `exports.default`; under ESM interop the callable sits on `.default`.
type AddFormats = (ajv: Ajv2020) => Ajv2020;
const addFormats = ((addFormatsModule as unknown as { default?: AddFormats }).default ??
  (addFormatsModule as unknown as AddFormats));

export interface ValidationIssue {
  /** JSON Pointer to the offending value, `''` for the root. */
  path: string;
  message: string;
}

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; issues: ValidationIssue[] };

const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
addFormats(ajv);

const schemaFiles = loadSchemaFiles();
for (const file of schemaFiles) {
  ajv.addSchema(file.schema, schemaId(file.path));
}
const compiled = new Map<string, ValidateFunction>();

function validatorFor(path: string): ValidateFunction {
  let fn = compiled.get(path);
  if (!fn) {
    const found = ajv.getSchema(schemaId(path));
    if (!found) throw new RangeError(`no schema at spec/schemas/${path}`);
    fn = found;
    compiled.set(path, fn);
  }
  return fn;
}

function issuesOf(errors: ErrorObject[] | null | undefined): ValidationIssue[] {
  return (errors ?? []).map((error) => {
    let message = error.message ?? 'is invalid';
    if (error.keyword === 'required') message = `must have property '${String(error.params['missingProperty'])}'`;
    if (error.keyword === 'const') message = `must be ${JSON.stringify(error.params['allowedValue'])}`;
    if (error.keyword === 'enum') message = `must be one of ${JSON.stringify(error.params['allowedValues'])}`;
    return { path: error.instancePath, message };
  });
}

/** Validates `value` against the schema at `path` under spec/schemas (e.g. `http/register-request.json`). */
export function validate<T = unknown>(path: string, value: unknown): ValidationResult<T> {
  const fn = validatorFor(path);
  if (fn(value)) return { ok: true, value: value as T };
  return { ok: false, issues: issuesOf(fn.errors) };
}

/** Human-readable one-liner for a list of issues, e.g. for an error frame's `message`. */
export function describeIssues(issues: ValidationIssue[], max = 3): string {
  const shown = issues.slice(0, max).map((issue) => `${issue.path || '(root)'} ${issue.message}`);
  const more = issues.length > max ? ` (and ${issues.length - max} more)` : '';
  return shown.join('; ') + more;
}

export type Direction = 'client' | 'server';

function frameTypes(direction: Direction): string[] {
  const prefix = `ws/${direction}/`;
  return schemaFiles
    .filter((file) => file.path.startsWith(prefix))
    .map((file) => file.path.slice(prefix.length, -'.json'.length))
    .sort();
}

/** Frame types a client may send, from the files under spec/schemas/ws/client. */
export const CLIENT_FRAME_TYPES: readonly string[] = Object.freeze(frameTypes('client'));
/** Frame types a server may send, from the files under spec/schemas/ws/server. */
export const SERVER_FRAME_TYPES: readonly string[] = Object.freeze(frameTypes('server'));

/**
 * Why a frame was refused:
 * - `not-object`: the JSON value is not an object (arrays and primitives included);
 * - `no-type`: it has no string `type`;
 * - `unknown-type`: `type` names no frame of this direction;
 * - `invalid`: it fails its frame schema.
 */
export type FrameRejection = 'not-object' | 'no-type' | 'unknown-type' | 'invalid';

export type FrameCheck<T> =
  | { ok: true; frame: T }
  | { ok: false; reason: FrameRejection; type?: string; id?: string; issues: ValidationIssue[] };

const REQUEST_ID = /^[A-Za-z0-9_.:-]{1,64}$/;

function checkFrame<T>(direction: Direction, value: unknown): FrameCheck<T> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'not-object', issues: [{ path: '', message: 'must be a JSON object' }] };
  }
  const record = value as Record<string, unknown>;
  // The id is echoed in the error only when it is itself well-formed, so an error never reflects arbitrary input.
  const rawId = Object.hasOwn(record, 'id') ? record['id'] : undefined;
  const id = typeof rawId === 'string' && REQUEST_ID.test(rawId) ? rawId : undefined;
  const rawType = Object.hasOwn(record, 'type') ? record['type'] : undefined;
  const withId = <R extends object>(result: R): R & { id?: string } => (id === undefined ? result : { ...result, id });
  if (typeof rawType !== 'string') {
    return withId({ ok: false as const, reason: 'no-type' as const, issues: [{ path: '/type', message: 'must be a string' }] });
  }
  const known = direction === 'client' ? CLIENT_FRAME_TYPES : SERVER_FRAME_TYPES;
  if (!known.includes(rawType)) {
    return withId({ ok: false as const, reason: 'unknown-type' as const, type: rawType, issues: [{ path: '/type', message: `unknown frame type` }] });
  }
  const result = validate<T>(`ws/${direction}/${rawType}.json`, value);
  if (result.ok) return { ok: true, frame: result.value };
  return withId({ ok: false as const, reason: 'invalid' as const, type: rawType, issues: result.issues });
}

/** Checks a parsed frame that a client sent (what a server receives). */
export function checkClientFrame(value: unknown): FrameCheck<ClientFrame> {
  return checkFrame<ClientFrame>('client', value);
}

/** Checks a parsed frame that a server sent (what a client receives). */
export function checkServerFrame(value: unknown): FrameCheck<ServerFrame> {
  return checkFrame<ServerFrame>('server', value);
}
