/** What a strategy sees of an account: enough to choose, nothing to change. */
export interface AccountView {
  readonly id: string
  /** up, not draining, and with a free slot now */
  readonly available: boolean
  readonly assigned: number
  readonly maxConcurrency: number
  /** relative share of traffic for weighted strategies (default 1) */
  readonly weight: number
  /** dispatcher sequence number of the last request handed to this account (0: never) */
  readonly lastAssignedSeq: number
  /** [0, 1]; 1 for an account with no signal against it */
  readonly healthScore: number
  /** share of the tightest quota budget left, in [0, 1]; 1 without a quota */
  readonly quotaLeft: number
}

/** Picks one account among candidates; never queues, never waits (undici's kGetDispatcher, piscina's balancer). */
export interface Strategy {
  readonly name: string
  pick<A extends AccountView>(accounts: readonly A[]): A | undefined
}
