import type { AccountView, Strategy } from './types.ts'

/** The available account with the most budget left (accounts without a quota count as untouched). */
export class MostQuotaLeft implements Strategy {
  readonly name = 'quota'

  pick<A extends AccountView>(accounts: readonly A[]): A | undefined {
    let best: A | undefined
    let bestLeft = -1
    for (const a of accounts) {
      if (!a.available) continue
      const left = a.quotaLeft
      if (left > bestLeft) {
        best = a
        bestLeft = left
      }
    }
    return best
  }
}
