/**
 * Each account's shared half on a fleet (src/dispatch/shared.ts; issue 17): its budget reserved in Redis before a
 * request is sent, its throttles and ejections published for its credential, and other nodes' cooldowns of that
 * credential applied to it once per heartbeat. Also what the membership record says of each account.
 *
 * Scopes (keys.ts): an account's quota rules count in `account:<id>` (an account id names one account fleet-wide: the
 * same id on two nodes is the same account, and shares its budget) and, when its session sends an API key or token,
 * in `cred:<credential id>`, shared by every account on every node configured with that key.
 */
import type { AccountConfig } from '../config/schema.ts'
import type { AccountHandle } from '../dispatch/account-handle.ts'
import type { Job } from '../dispatch/job.ts'
import type { SharedAccount } from '../dispatch/shared.ts'
import type { Fleet } from './fleet.ts'
import { scopes } from './keys.ts'
import type { AccountRecord } from './membership.ts'
import type { QuotaScope, Reservation } from './quota.ts'
import { UNKNOWN } from './store.ts'

/** The API key (else the token) an account's session sends, read from the environment as its worker reads it. */
export function credentialOf(config: AccountConfig, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const session = config.session as { apiKey?: { fromEnv: string }; authToken?: { fromEnv: string } }
  const named = session.apiKey ?? session.authToken
  const value = named === undefined ? undefined : env[named.fromEnv]
  return value === undefined || value === '' ? undefined : value
}

class FleetAccount implements SharedAccount {
  readonly credential: string | undefined
  readonly #fleet: Fleet
  readonly #scopes: QuotaScope[]
  readonly #reservations = new Map<Job, Reservation>()
  readonly #published: (credential: string) => void

  constructor(fleet: Fleet, config: AccountConfig, published: (credential: string) => void) {
    this.#fleet = fleet
    this.#published = published
    const key = credentialOf(config)
    this.credential = key === undefined ? undefined : fleet.credentialId(key)
    const rules = config.quota ?? []
    this.#scopes = rules.length === 0 ? [] : [
      { scope: scopes.account(config.id), rules },
      ...(this.credential === undefined ? [] : [{ scope: scopes.credential(this.credential), rules }]),
    ]
  }

  reserve(job: Job): Promise<number> | undefined {
    return this.#scopes.length === 0 ? undefined : this.#reserve(job)
  }

  async #reserve(job: Job): Promise<number> {
    const reply = await this.#fleet.quota.reserve(this.#scopes)
    if (reply === UNKNOWN) return 0 // fail-open: Redis did not answer, the local quota alone applies
    if (!reply.ok) return Math.max(1, reply.retryAfterMs)
    this.#reservations.set(job, reply.reservation)
    return 0
  }

  end(job: Job, tokens: number | undefined): void {
    const reservation = this.#reservations.get(job)
    if (reservation === undefined) return
    this.#reservations.delete(job)
    void (tokens === undefined ? this.#fleet.quota.release(reservation) : this.#fleet.quota.settle(reservation, tokens))
  }

  publish(kind: 'cooldown' | 'ejected', ms: number, reason: string): void {
    if (this.credential === undefined || ms <= 0) return
    void this.#fleet.cooldowns.set(this.credential, ms, kind, reason)
    this.#published(this.credential)
  }
}

/** What the membership record says of an account: `ok` when it can take work now or as soon as its worker wakes. */
function stateOf(a: AccountHandle): string {
  if (a.state !== 'up') return a.state
  if (!a.sessionUp) return `session ${a.sessionState}`
  const outlier = a.outlier.state()
  if (outlier !== 'ok') return outlier
  if (a.quota && !a.quota.admits(a.assigned)) return 'quota'
  return 'ok'
}

export class FleetAccounts {
  readonly #fleet: Fleet
  #accounts: readonly AccountHandle[] = []

  constructor(fleet: Fleet) {
    this.#fleet = fleet
  }

  /** The factory the dispatcher calls for each account it builds (at start and on reload). */
  readonly factory = (account: { readonly config: AccountConfig }): SharedAccount =>
    new FleetAccount(this.#fleet, account.config, this.#apply)

  bind(accounts: readonly AccountHandle[]): void {
    this.#accounts = accounts
  }

  /** This node's accounts for its membership record (called once per heartbeat). */
  records(): AccountRecord[] {
    return this.#accounts.map((a) => ({
      id: a.id, state: stateOf(a), capacity: a.maxConcurrency, inFlight: a.assigned,
      ...(a.shared?.credential === undefined ? {} : { credential: a.shared.credential }),
      ...(a.config.models === undefined ? {} : { models: a.config.models }),
    }))
  }

  /** After a heartbeat: read the credentials in use next time, and apply what the fleet holds against them. */
  afterBeat(): void {
    const credentials = new Set<string>()
    for (const a of this.#accounts) if (a.shared?.credential !== undefined) credentials.add(a.shared.credential)
    this.#fleet.cooldowns.track(credentials)
    this.#apply()
  }

  /**
   * Every account's remote cooldown, from the local copy (Cooldowns.until: a map lookup). Run after each heartbeat,
   * and at once when this node published one, so its other accounts on the same key stop now, not a heartbeat later.
   */
  #apply = (only?: string): void => {
    const cooldowns = this.#fleet.cooldowns
    for (const a of this.#accounts) {
      const credential = a.shared?.credential
      if (credential === undefined || (only !== undefined && credential !== only)) continue
      a.outlier.sharedUntil = cooldowns.until(credential)
    }
  }
}
