/**
 * Envoy's retry budget, over recent traffic: failovers in the last window may not exceed `percent` of the requests
 * in that window (at least `min`), so that a failing fleet does not multiply its own load. Two buckets of `windowMs`
 * give a sliding estimate (the previous bucket weighted by how much of it still lies in the window) for the cost of
 * two counters per request.
 */
export class RetryBudget {
  readonly #percent: number
  readonly #min: number
  readonly #windowMs: number
  readonly #now: () => number
  #bucketStart = 0
  #requests = 0
  #retries = 0
  #prevRequests = 0
  #prevRetries = 0

  constructor(options: { percent: number; min: number; windowMs?: number }, now: () => number = Date.now) {
    this.#percent = options.percent
    this.#min = options.min
    this.#windowMs = options.windowMs ?? 10_000
    this.#now = now
  }

  #roll(now: number): void {
    const elapsed = now - this.#bucketStart
    if (elapsed < this.#windowMs) return
    const twoAgo = elapsed >= 2 * this.#windowMs
    this.#prevRequests = twoAgo ? 0 : this.#requests
    this.#prevRetries = twoAgo ? 0 : this.#retries
    this.#requests = this.#retries = 0
    this.#bucketStart = twoAgo ? now : this.#bucketStart + this.#windowMs
  }

  recordRequest(now: number = this.#now()): void {
    this.#roll(now)
    this.#requests++
  }

  /** Takes one failover from the budget if there is one left. */
  tryRetry(): boolean {
    const now = this.#now()
    this.#roll(now)
    const weight = 1 - (now - this.#bucketStart) / this.#windowMs
    const requests = this.#requests + this.#prevRequests * weight
    const retries = this.#retries + this.#prevRetries * weight
    if (retries >= Math.max(this.#min, (requests * this.#percent) / 100)) return false
    this.#retries++
    return true
  }
}
