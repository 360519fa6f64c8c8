/**
 * Per-account budgets over rolling windows: requests and/or tokens (input + output) per `1m`, `1h`, `5h` or `24h`.
 * The router skips an account that would exceed a budget. Requests in flight count against the request budget the
 * moment they are handed out, so concurrent requests can never overshoot it; a token budget is checked before each
 * request (an answer in flight may overshoot it by its own size, since its length is not known in advance).
 * Window sums are cached, refreshed once a second and whenever an answer of this account finishes: the check costs a
 * few comparisons on the hot path.
 */
import { WINDOWS, type Counters, type UsageLedger, type WindowName } from './ledger.ts'

export interface QuotaRule {
  window: WindowName
  requests?: number | undefined
  tokens?: number | undefined
}

interface Cached { requests: number; tokens: number; resetsAt: number; at: number }

const tokensOf = (c: Counters): number => c.input + c.output

export class Quota {
  readonly rules: readonly QuotaRule[]
  readonly #account: string
  readonly #ledger: UsageLedger
  readonly #now: () => number
  readonly #cache: Cached[]
  /** a fleet's shared budget refused this account until then (epoch ms; 0: never): src/cluster/accounts.ts */
  #refusedUntil = 0

  constructor(account: string, rules: readonly QuotaRule[], ledger: UsageLedger, now: () => number = Date.now) {
    this.#account = account
    this.rules = rules
    this.#ledger = ledger
    this.#now = now
    this.#cache = rules.map(() => ({ requests: 0, tokens: 0, resetsAt: 0, at: Number.NEGATIVE_INFINITY }))
  }

  #used(i: number, now: number): Cached {
    const cached = this.#cache[i]
    if (now - cached.at >= 1_000) {
      const w = this.#ledger.window(this.#account, WINDOWS[this.rules[i].window])
      cached.requests = w.counters.requests
      cached.tokens = tokensOf(w.counters)
      cached.resetsAt = w.resetsAt
      cached.at = now
    }
    return cached
  }

  /** May one more request go to the account, with `inFlight` already handed to it? */
  admits(inFlight: number): boolean {
    const now = this.#now()
    if (this.#refusedUntil !== 0 && now < this.#refusedUntil) return false
    for (let i = 0; i < this.rules.length; i++) {
      const rule = this.rules[i]
      const used = this.#used(i, now)
      if (rule.requests !== undefined && used.requests + inFlight + 1 > rule.requests) return false
      if (rule.tokens !== undefined && used.tokens >= rule.tokens) return false
    }
    return true
  }

  /** The share of the tightest budget still left, in [0, 1] (the `quota` strategy prefers the most). */
  left(inFlight: number): number {
    const now = this.#now()
    if (this.#refusedUntil !== 0 && now < this.#refusedUntil) return 0
    let left = 1
    for (let i = 0; i < this.rules.length; i++) {
      const rule = this.rules[i]
      const used = this.#used(i, now)
      if (rule.requests !== undefined) left = Math.min(left, 1 - (used.requests + inFlight) / rule.requests)
      if (rule.tokens !== undefined) left = Math.min(left, 1 - used.tokens / rule.tokens)
    }
    return Math.max(0, left)
  }

  /** When the first exhausted budget has room again (0: none is exhausted). */
  resetsAt(inFlight: number): number {
    const now = this.#now()
    let soonest = this.#refusedUntil > now ? this.#refusedUntil : Number.POSITIVE_INFINITY
    for (let i = 0; i < this.rules.length; i++) {
      const rule = this.rules[i]
      const used = this.#used(i, now)
      const out = (rule.requests !== undefined && used.requests + inFlight + 1 > rule.requests)
        || (rule.tokens !== undefined && used.tokens >= rule.tokens)
      if (out && used.resetsAt < soonest) soonest = used.resetsAt
    }
    return Number.isFinite(soonest) ? soonest : 0
  }

  /**
   * The budget shared by the fleet's nodes (counted in Redis, src/cluster/quota.ts) has no room until `until`: the
   * local count cannot know what the other nodes spent, so the account takes nothing more until then.
   */
  refuse(until: number): void {
    this.#refusedUntil = Math.max(this.#refusedUntil, until)
  }

  /** An answer finished: the next check re-reads the window (a bucket walk, only on this account's answers). */
  onRecord(): void {
    for (const cached of this.#cache) cached.at = Number.NEGATIVE_INFINITY
  }
}
