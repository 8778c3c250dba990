// Every conformance case, in spec order. A new section file adds one import and one spread here.
import { checkCases, type ConformanceCase } from '../case.ts';
import { cases as transportHttp } from './1-transport-http.ts';
import { cases as transportWebSocket } from './1-transport-websocket.ts';
import { cases as identity } from './2-identity.ts';
import { cases as authentication } from './2-authentication.ts';
import { cases as prekeys } from './3-prekeys.ts';
import { cases as sending } from './4-sending.ts';
import { cases as storageFaults } from './4-storage-faults.ts';
import { cases as delivery } from './4-delivery.ts';
import { cases as acknowledgement } from './4-acknowledgement.ts';
import { cases as sessions } from './4-sessions.ts';
import { cases as model } from './4-model.ts';
import { cases as receipts } from './4-receipts.ts';
import { cases as presence } from './5-presence.ts';
import { cases as keepalive } from './6-keepalive.ts';
import { cases as limits } from './6-limits.ts';
import { cases as errors } from './7-errors.ts';
import { cases as security } from './9-security.ts';
import { cases as versioning } from './9-versioning.ts';

export const cases: readonly ConformanceCase[] = Object.freeze([
  ...transportHttp,
  ...transportWebSocket,
  ...identity,
  ...authentication,
  ...prekeys,
  ...sending,
  ...storageFaults,
  ...delivery,
  ...acknowledgement,
  ...receipts,
  ...sessions,
  ...model,
  ...presence,
  ...keepalive,
  ...limits,
  ...errors,
  ...security,
  ...versioning,
]);

checkCases(cases);
