import type { AccountView, Strategy } from './types.ts'

/** The available account that was handed a request longest ago (never used first, then config order). */
export class LeastRecentlyUsed implements Strategy {
  readonly name = 'least-recently-used'

  pick<A extends AccountView>(accounts: readonly A[]): A | undefined {
    let best: A | undefined
    for (const account of accounts) {
      if (account.available && (!best || account.lastAssignedSeq < best.lastAssignedSeq)) best = account
    }
    return best
  }
}
