/**
 * A bound on the bytes of request bodies being read and parsed at once, across all clients: without it, eight
 * clients sending 27 MiB bodies held 1.8 GB between them (docs/security.md, "Bounds"). A body takes its bytes as they
 * arrive (or all it declares, up front) and gives them back once it was parsed and checked; a body that would pass the
 * budget is refused at once with a 529 and `retry-after` (the client retries; nothing of it is kept).
 */
export class BodyBudget {
  readonly capacity: number
  #used = 0

  constructor(capacity: number) {
    this.capacity = capacity
  }

  get used(): number { return this.#used }

  /** A hold on the budget for one body: `take` more as bytes arrive, `release` once (idempotent) when done. */
  hold(): BodyHold {
    return new BodyHold(this)
  }

  /** @internal */
  tryTake(n: number): boolean {
    if (this.#used + n > this.capacity) return false
    this.#used += n
    return true
  }

  /** @internal */
  give(n: number): void {
    this.#used -= n
  }
}

export class BodyHold {
  readonly #budget: BodyBudget
  #held = 0

  constructor(budget: BodyBudget) {
    this.#budget = budget
  }

  get held(): number { return this.#held }

  /** Takes `n` more bytes; false (and nothing taken) when the budget cannot give them now. */
  take(n: number): boolean {
    if (!this.#budget.tryTake(n)) return false
    this.#held += n
    return true
  }

  /** Up to `total` bytes held in all: takes only what is missing. */
  cover(total: number): boolean {
    return total <= this.#held || this.take(total - this.#held)
  }

  release(): void {
    this.#budget.give(this.#held)
    this.#held = 0
  }
}
