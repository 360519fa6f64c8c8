import type { AccountView, Strategy } from './types.ts'
import { weightedRandom } from './random.ts'

const load = (a: AccountView): number => a.assigned / a.maxConcurrency

/** The available account with the fewest requests in flight relative to its limit (first of equals). */
export class LeastBusy implements Strategy {
  readonly name = 'least-busy'

  pick<A extends AccountView>(accounts: readonly A[]): A | undefined {
    let best: A | undefined
    for (const a of accounts) if (a.available && (!best || load(a) < load(best))) best = a
    return best
  }
}

/**
 * Power of two choices (Envoy's least-request): two accounts drawn at random by weight, the less loaded one wins.
 * Nearly as good as scanning for the least loaded, without herding every request onto the same account.
 */
export class PowerOfTwoChoices implements Strategy {
  readonly name = 'power-of-two-choices'
  readonly #random: () => number
  constructor(random: () => number = Math.random) { this.#random = random }

  pick<A extends AccountView>(accounts: readonly A[]): A | undefined {
    const first = weightedRandom(accounts, this.#random)
    if (!first) return undefined
    const second = weightedRandom(accounts, this.#random, first)
    return second && load(second) < load(first) ? second : first
  }
}
