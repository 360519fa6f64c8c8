import type { AccountView, Strategy } from './types.ts'

export class RoundRobin implements Strategy {
  readonly name = 'round-robin'
  #cursor = 0

  pick<A extends AccountView>(accounts: readonly A[]): A | undefined {
    const n = accounts.length
    for (let i = 0; i < n; i++) { // at most once around; no arrays built per request
      const account = accounts[(this.#cursor + i) % n]
      if (account.available) {
        this.#cursor = (this.#cursor + i + 1) % n
        return account
      }
    }
    return undefined // the dispatcher queues; a strategy never waits
  }
}
