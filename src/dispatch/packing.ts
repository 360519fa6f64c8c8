/**
 * Packing: the requests placed in one event-loop turn go to as few account workers as their free slots allow. Every
 * worker a turn touches costs one `postMessage` out and one back, and a wake-up of its thread (on one core, a context
 * switch each way): at c=50 over 8 accounts a turn's requests used to reach nearly every worker
 * (docs/performance.md, "What the thread hop costs").
 *
 * Only for strategies whose meaning is a share over time, not the state of the moment (PACKED): the turn's first
 * request asks the strategy; the next ones of the turn follow it to the same account while it is `available` (a free
 * slot, quota, not cooling or ejected, not parsing a large body), up to PACK_MAX. A follower is a request the strategy
 * did not give that account, so the account owes it: it is passed over for as many of the strategy's later picks
 * (each one the strategy books as served). Over time every account gets the strategy's share, off by at most
 * PACK_MAX - 1 requests at any moment. The load-reading strategies (least-busy, power-of-two-choices, health-score,
 * least-recently-used, quota) are asked for every request, as before; affinity homes and tool-call continuations are
 * placed before any strategy is asked (placement.ts), and never packed.
 */
import type { AccountView, Strategy } from '../strategies/types.ts'

/** the strategies that pick a sequence (smooth weighted round-robin, weighted random): their picks may be paid later */
const PACKED: ReadonlySet<string> = new Set(['round-robin', 'random'])

/**
 * The most requests one turn hands one account. It bounds how far an account may run ahead of its share (PACK_MAX - 1
 * requests) and how much of one turn's work one worker thread serialises; following further saved no more CPU
 * (docs/performance.md, "Figures behind the code"). `AGYC_PACK_MAX` in the environment, read once, sets it for a
 * benchmark: 1 turns packing off, every request asks its strategy (docs/routing.md).
 */
export const PACK_MAX = packMax(process.env.AGYC_PACK_MAX)

function packMax(raw: string | undefined): number {
  const n = Number(raw)
  return raw !== undefined && Number.isInteger(n) && n >= 1 ? n : 8
}

/** One packed strategy's state: the account this turn's requests follow, and what each account owes. */
class Lane<A extends AccountView> {
  readonly strategy: Strategy
  /** the account the turn's first pick chose, for requests with the same candidate list; undefined between turns */
  open: A | undefined
  candidates: readonly A[] | undefined
  /** requests the open account was handed this turn */
  taken = 0
  /** picks of the strategy each account is still passed over for: the requests it was handed beyond its turn */
  readonly owed = new WeakMap<A, number>()

  constructor(strategy: Strategy) {
    this.strategy = strategy
  }
}

export class Packer<A extends AccountView> {
  readonly #lanes = new Map<Strategy, Lane<A>>()
  readonly #opened: Lane<A>[] = []
  /** requests placed as followers (not asked of the strategy): what the fairness test checks happened */
  followed = 0

  constructor(strategies: Iterable<Strategy>) {
    for (const strategy of strategies) if (PACKED.has(strategy.name)) this.#lanes.set(strategy, new Lane(strategy))
  }

  /** The account for a request the strategy places: the turn's open account when it may follow, else the strategy's pick. */
  pick(strategy: Strategy, candidates: readonly A[]): A | undefined {
    const lane = this.#lanes.get(strategy)
    if (lane === undefined) return strategy.pick(candidates)
    const open = lane.open
    if (open !== undefined && lane.candidates === candidates && lane.taken < PACK_MAX && open.available) {
      lane.taken++
      lane.owed.set(open, (lane.owed.get(open) ?? 0) + 1)
      this.followed++
      return open
    }
    const account = pickOwing(lane, candidates)
    if (account === undefined) return undefined
    if (lane.open === undefined) {
      if (this.#opened.length === 0) setImmediate(this.#endTurn)
      this.#opened.push(lane)
    }
    lane.open = account
    lane.candidates = candidates
    lane.taken = 1
    return account
  }

  // the turn's batches leave on setImmediate (worker-link.ts): the next turn starts with a fresh pick
  #endTurn = (): void => {
    for (const lane of this.#opened) {
      lane.open = undefined
      lane.candidates = undefined
    }
    this.#opened.length = 0
  }
}

/**
 * The strategy's pick, passing over accounts that still owe: each pass is a pick the strategy booked, and pays one
 * request back. Ends: every pass lowers what is owed in all, which is finite.
 */
function pickOwing<A extends AccountView>(lane: Lane<A>, candidates: readonly A[]): A | undefined {
  for (;;) {
    const account = lane.strategy.pick(candidates)
    if (account === undefined) return undefined
    const owed = lane.owed.get(account) ?? 0
    if (owed === 0) return account
    lane.owed.set(account, owed - 1)
  }
}
