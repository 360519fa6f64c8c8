import type { StrategyName } from '../config/schema.ts'
import { HealthScore } from './health-score.ts'
import { LeastRecentlyUsed } from './least-recently-used.ts'
import { RoundRobin } from './round-robin.ts'
import { MostQuotaLeft } from './quota.ts'
import { WeightedRandom } from './random.ts'
import { LeastBusy, PowerOfTwoChoices } from './least-busy.ts'
import type { Strategy } from './types.ts'

export type { AccountView, Strategy } from './types.ts'

/** One instance per name for the dispatcher's life: round-robin keeps its cursor across requests. */
export function createStrategies(): Record<StrategyName, Strategy> {
  return {
    'round-robin': new RoundRobin(),
    'least-recently-used': new LeastRecentlyUsed(),
    'health-score': new HealthScore(),
    random: new WeightedRandom(),
    'least-busy': new LeastBusy(),
    'power-of-two-choices': new PowerOfTwoChoices(),
    quota: new MostQuotaLeft(),
  }
}
