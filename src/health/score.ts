/**
 * The health score of an account, in [0, 1]:
 *
 *   score = freshness × (0.5·success + 0.2·latency + 0.15·loop + 0.15·streak)
 *
 * - freshness: 1 while the last heartbeat is at most 1.5 periods old, falling linearly to 0 at `missedHeartbeats`
 *   periods (when the watchdog replaces the worker);
 * - success: EWMA of request outcomes (1 success, 0 failure; α = 0.1), local-origin errors excluded;
 * - latency: the fleet's mean latency EWMA over this account's (capped at 1): an account twice as slow as the others
 *   gets 0.5;
 * - loop: the worker's event-loop delay, 1 up to 20 ms, falling linearly to 0 at 500 ms;
 * - streak: 0.5^(consecutive failures).
 */
export const SUCCESS_ALPHA = 0.1
export const LATENCY_ALPHA = 0.2

export interface ScoreInputs {
  heartbeatAgeMs: number
  heartbeatMs: number
  missedHeartbeats: number
  successEwma: number
  latencyEwmaMs: number
  fleetLatencyMs: number
  loopDelayMs: number
  consecutiveFailures: number
}

export interface ScoreParts {
  freshness: number
  success: number
  latency: number
  loop: number
  streak: number
}

const clamp01 = (x: number): number => (x < 0 ? 0 : x > 1 ? 1 : x)

export function scoreParts(i: ScoreInputs): ScoreParts {
  const fresh = 1.5 * i.heartbeatMs
  const dead = Math.max(fresh + 1, i.missedHeartbeats * i.heartbeatMs)
  return {
    freshness: clamp01(1 - (i.heartbeatAgeMs - fresh) / (dead - fresh)),
    success: clamp01(i.successEwma),
    latency: i.latencyEwmaMs <= 0 || i.fleetLatencyMs <= 0 ? 1 : clamp01(i.fleetLatencyMs / i.latencyEwmaMs),
    loop: clamp01(1 - (i.loopDelayMs - 20) / 480),
    streak: 0.5 ** i.consecutiveFailures,
  }
}

export function combine(p: ScoreParts): number {
  return p.freshness * (0.5 * p.success + 0.2 * p.latency + 0.15 * p.loop + 0.15 * p.streak)
}

/** Per-account running averages that feed the score. */
export class HealthStats {
  successEwma = 1
  latencyEwmaMs = 0
  consecutiveFailures = 0

  recordSuccess(latencyMs: number): void {
    this.successEwma += SUCCESS_ALPHA * (1 - this.successEwma)
    this.latencyEwmaMs = this.latencyEwmaMs === 0 ? latencyMs : this.latencyEwmaMs + LATENCY_ALPHA * (latencyMs - this.latencyEwmaMs)
    this.consecutiveFailures = 0
  }

  recordFailure(): void {
    this.successEwma -= SUCCESS_ALPHA * this.successEwma
    this.consecutiveFailures++
  }
}
