// The public face of spec/: types, validators and registries, all derived from the schema and registry files.
export type * from './types.gen.ts';
export {
  validate,
  describeIssues,
  checkClientFrame,
  checkServerFrame,
  CLIENT_FRAME_TYPES,
  SERVER_FRAME_TYPES,
  type ValidationIssue,
  type ValidationResult,
  type FrameCheck,
  type FrameRejection,
} from './validators.ts';
export {
  errors,
  limits,
  routes,
  requirements,
  errorSpec,
  requirement,
  defaultLimits,
  type ErrorSpec,
  type LimitSpec,
  type RouteSpec,
  type RequirementEntry,
  type Transport,
} from './registries.ts';
export { SCHEMA_BASE, schemaId } from './schema-files.ts';
export { WS_SUBPROTOCOL, API_PREFIX, WS_PATH } from './constants.ts';
