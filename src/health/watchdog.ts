/**
 * Once per heartbeat period: a worker that missed `missedHeartbeats` in a row is terminated (a hung event loop; its
 * handle restarts it), and every account's health score is recomputed against the fleet's mean latency. The
 * dispatcher hears each tick after, to hand queued work to accounts that cooled down or came back.
 */
import type { HealthConfig } from '../config/schema.ts'
import type { HealthStats } from './score.ts'

/** What the watchdog reads and asks of an account. */
export interface Watched {
  readonly state: string
  readonly lastHeartbeatAt: number
  /** a worker parsing a large body it was handed misses heartbeats until then without blame (parse-window.ts) */
  readonly parsing: { readonly graceUntil: number }
  readonly health: HealthStats
  terminate(reason: string): void
  rescore(now: number, fleetLatencyMs: number): void
}

export class Watchdog {
  readonly #accounts: readonly Watched[]
  readonly #health: HealthConfig
  readonly #after: () => void
  #timer: NodeJS.Timeout | undefined

  /** `accounts` is read at each tick: an array changed in place (hot reload) is seen as it is then */
  constructor(accounts: readonly Watched[], health: HealthConfig, after: () => void) {
    this.#accounts = accounts
    this.#health = health
    this.#after = after
  }

  start(): void {
    this.#timer = setInterval(this.#tick, this.#health.heartbeatMs)
    this.#timer.unref()
  }

  stop(): void {
    clearInterval(this.#timer)
  }

  #tick = (): void => {
    const now = Date.now()
    const limit = this.#health.missedHeartbeats * this.#health.heartbeatMs
    let latencySum = 0
    let latencyCount = 0
    for (const a of this.#accounts) {
      if ((a.state === 'up' || a.state === 'draining') && now - a.lastHeartbeatAt > limit && now > a.parsing.graceUntil) {
        a.terminate(`no heartbeat for ${now - a.lastHeartbeatAt} ms`)
      }
      if (a.health.latencyEwmaMs > 0) {
        latencySum += a.health.latencyEwmaMs
        latencyCount++
      }
    }
    const fleetLatencyMs = latencyCount === 0 ? 0 : latencySum / latencyCount
    for (const a of this.#accounts) a.rescore(now, fleetLatencyMs)
    this.#after()
  }
}
