import type { AccountView, Strategy } from './types.ts'

/** Picks an available account at random, in proportion to its weight. */
export function weightedRandom<A extends AccountView>(accounts: readonly A[], random: () => number, skip?: A): A | undefined {
  let total = 0
  for (const a of accounts) if (a.available && a !== skip) total += a.weight
  if (total <= 0) return undefined
  let r = random() * total
  for (const a of accounts) {
    if (!a.available || a === skip) continue
    r -= a.weight
    if (r < 0) return a
  }
  return undefined
}

export class WeightedRandom implements Strategy {
  readonly name = 'random'
  readonly #random: () => number
  constructor(random: () => number = Math.random) { this.#random = random }

  pick<A extends AccountView>(accounts: readonly A[]): A | undefined {
    return weightedRandom(accounts, this.#random)
  }
}
