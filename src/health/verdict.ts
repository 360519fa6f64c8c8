/**
 * What a failed request says about the account that answered it. Kept apart from the dispatcher's placement and
 * failover: this is the health side of a failure (docs/routing.md, "Health, failover and crash isolation").
 * - The upstream asked us to slow down (429, 529): a cooldown, not a mark against the account's health.
 * - The account's own fault (a 5xx, or its credentials refused): counted toward ejection.
 * - Anything else says nothing about the account: a 529 or timeout we produced (counting it would eject healthy
 *   accounts exactly when load peaks; Envoy keeps local-origin errors apart for the same reason), the request's own
 *   4xx, and a dead worker or child, which the account handle counts once however many requests it took with it.
 */
import type { Logger } from 'pino'
import { specOf, type Code, type OrchestratorError } from '../errors.ts'
import { metrics } from '../metrics.ts'
import type { Outlier } from './outlier.ts'
import type { HealthStats } from './score.ts'

const THROTTLE = new Set<Code>(['AGYC_UPSTREAM_RATE_LIMITED', 'AGYC_UPSTREAM_OVERLOADED'])
/**
 * 4xx that are the account's own fault, not the request's: its credentials were refused (an agent CLI that is not
 * logged in, a revoked key). They count like a 5xx, so such an account is ejected instead of taking every turn.
 */
const ACCOUNT_FAULT = new Set<Code>(['AGYC_UPSTREAM_AUTH', 'AGYC_UPSTREAM_FORBIDDEN'])

/** What a verdict reads and marks of an account. */
export interface JudgedAccount {
  readonly id: string
  readonly outlier: Outlier
  readonly health: HealthStats
  /** a failure while the session is down was counted once, for the outage */
  readonly sessionUp: boolean
  /** a fleet (`cluster`): the verdict is published for the account's credential (src/dispatch/shared.ts) */
  readonly shared?: { publish(kind: 'cooldown' | 'ejected', ms: number, reason: string): void } | undefined
}

export function judgeFailure(account: JudgedAccount, error: OrchestratorError, log: Logger): void {
  const spec = specOf(error.code)
  if (THROTTLE.has(error.code)) {
    account.outlier.recordThrottle(error.retryAfterS)
    // the same key on another node would hear the same answer: cool the credential fleet-wide
    if (account.shared && account.outlier.cooldownUntil > Date.now()) account.shared.publish('cooldown', account.outlier.cooldownUntil - Date.now(), error.code)
    metrics.cooldown(account.id)
    log.warn({ account: account.id, code: error.code, retryAfterS: error.retryAfterS }, 'account cooling down')
  } else if (!spec.localOrigin && (spec.status >= 500 || ACCOUNT_FAULT.has(error.code)) && error.code !== 'AGYC_WORKER_DIED' && account.sessionUp) {
    account.health.recordFailure()
    if (account.outlier.recordFailure()) {
      // published like a cooldown: the other nodes keep the credential out for the ejection time, without a probe of
      // their own; this node's probe comes after the entry expired
      account.shared?.publish('ejected', account.outlier.ejectedUntil - Date.now(), error.code)
      metrics.ejection(account.id)
      log.warn({ account: account.id, ejections: account.outlier.ejections }, 'account ejected')
    }
  }
}
