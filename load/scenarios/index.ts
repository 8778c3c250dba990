// The scenarios of `tickwire load`, by name.
import type { Scenario, ScenarioName } from '../scenario.ts';
import { connectionsScenario } from './connections.ts';
import { faninScenario } from './fanin.ts';
import { offlineScenario } from './offline.ts';
import { pairsScenario } from './pairs.ts';
import { prekeysScenario } from './prekeys.ts';

export const SCENARIOS: Record<ScenarioName, Scenario> = {
  connections: connectionsScenario,
  pairs: pairsScenario,
  fanin: faninScenario,
  offline: offlineScenario,
  prekeys: prekeysScenario,
};
