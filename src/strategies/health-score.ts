import type { AccountView, Strategy } from './types.ts'

/**
 * The healthiest available account; among equals (within 0.05) the one with the lowest load, so that a calm fleet of
 * equally healthy accounts still spreads its work.
 */
export class HealthScore implements Strategy {
  readonly name = 'health-score'

  pick<A extends AccountView>(accounts: readonly A[]): A | undefined {
    let best: A | undefined
    for (const account of accounts) {
      if (!account.available) continue
      if (!best) { best = account; continue }
      const diff = account.healthScore - best.healthScore
      if (diff > 0.05 || (diff > -0.05 && load(account) < load(best))) best = account
    }
    return best
  }
}

const load = (a: AccountView): number => a.assigned / a.maxConcurrency
