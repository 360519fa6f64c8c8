/**
 * Outlier detection for one account (Envoy's words): a rate-limit or overload answer puts it in cooldown for the
 * upstream's `retry-after` (else `defaultCooldownMs`); `consecutiveFailures` failures in a row eject it for
 * `ejectionBaseMs × n` (n = times ejected, capped at `ejectionMaxMs`); when that time is up it is half-open and a
 * single probe request decides: success brings it back, failure ejects it again for longer.
 * The clock is injected so the timing is tested without waiting.
 */
export interface OutlierOptions {
  consecutiveFailures: number
  ejectionBaseMs: number
  ejectionMaxMs: number
  defaultCooldownMs: number
  /** false: never cool down or eject */
  outlierDetection?: boolean
}

export type OutlierState = 'ok' | 'cooling' | 'ejected' | 'half-open'

export class Outlier {
  readonly #options: OutlierOptions
  readonly #now: () => number
  cooldownUntil = 0
  ejectedUntil = 0
  /**
   * A fleet (`cluster`): another node cooled or ejected the credential this account spends, until then (0: no). Set
   * once per fleet heartbeat from Redis (src/cluster/accounts.ts), never by this account's own failures.
   */
  sharedUntil = 0
  ejections = 0
  cooldowns = 0
  consecutive = 0
  /** half-open: the one probe request is in flight */
  probing = false

  constructor(options: OutlierOptions, now: () => number = Date.now) {
    this.#options = options
    this.#now = now
  }

  /** Whether the account may be handed a request now; cheap on the hot path (two comparisons when healthy). */
  admits(): boolean {
    if (this.cooldownUntil === 0 && this.ejectedUntil === 0 && this.sharedUntil === 0) return true
    const now = this.#now()
    if (now < this.cooldownUntil || now < this.sharedUntil) return false
    if (this.ejectedUntil === 0) return true
    return now >= this.ejectedUntil && !this.probing
  }

  state(): OutlierState {
    const now = this.#now()
    if (this.ejectedUntil !== 0) return now < this.ejectedUntil ? 'ejected' : 'half-open'
    return now < this.cooldownUntil || now < this.sharedUntil ? 'cooling' : 'ok'
  }

  /** When the account can take work again (0: now). */
  recoversAt(): number {
    const now = this.#now()
    const at = Math.max(this.cooldownUntil, this.ejectedUntil, this.sharedUntil)
    return at > now ? at : 0
  }

  /** A request was handed to the account: in half-open state it is the probe. */
  onAssign(): void {
    if (this.ejectedUntil !== 0 && this.#now() >= this.ejectedUntil) this.probing = true
  }

  /** The probe never answered (its client left): let another request probe. */
  onAbandon(): void {
    this.probing = false
  }

  recordSuccess(): void {
    this.consecutive = 0
    if (this.ejectedUntil !== 0 && this.probing) {
      this.ejectedUntil = 0
      this.probing = false
    }
  }

  /** Returns true when this failure ejected the account. */
  recordFailure(): boolean {
    if (this.#options.outlierDetection === false) return false
    // failures of requests that were already under way when the account was ejected say nothing new
    if (this.ejectedUntil !== 0 && !this.probing && this.#now() < this.ejectedUntil) return false
    this.consecutive++
    if (this.probing || this.consecutive >= this.#options.consecutiveFailures) {
      this.probing = false
      this.ejections++
      this.consecutive = 0
      this.ejectedUntil = this.#now() + Math.min(this.#options.ejectionMaxMs, this.#options.ejectionBaseMs * this.ejections)
      return true
    }
    return false
  }

  /** A 429/529 from the upstream: wait as long as it asked; not a failure of the account itself. */
  recordThrottle(retryAfterS: number | undefined): void {
    if (this.#options.outlierDetection === false) return
    const ms = retryAfterS === undefined ? this.#options.defaultCooldownMs : retryAfterS * 1000
    this.cooldownUntil = Math.max(this.cooldownUntil, this.#now() + ms)
    this.cooldowns++
  }

  /** An operator's reset (or a config reload) clears everything. */
  reset(): void {
    this.cooldownUntil = this.ejectedUntil = this.consecutive = 0
    this.probing = false
  }
}
