import type { AccountView, Strategy } from './types.ts'

/**
 * Smooth weighted round-robin, as nginx does it: each pick adds every available account's weight to its running
 * score, takes the highest and subtracts the total from it. Weights 3:1 give a a b a a a b a …, never bursts; equal
 * weights give plain round-robin.
 */
export class RoundRobin implements Strategy {
  readonly name = 'round-robin'
  readonly #current = new WeakMap<AccountView, number>()

  pick<A extends AccountView>(accounts: readonly A[]): A | undefined {
    let best: A | undefined
    let bestScore = Number.NEGATIVE_INFINITY
    let total = 0
    for (const account of accounts) {
      if (!account.available) continue
      const score = (this.#current.get(account) ?? 0) + account.weight
      this.#current.set(account, score)
      total += account.weight
      if (score > bestScore) {
        best = account
        bestScore = score
      }
    }
    if (best) this.#current.set(best, bestScore - total)
    return best // undefined: the dispatcher queues; a strategy never waits
  }
}
