/** What an account handle is given when it is made, and what it tells its owner (the dispatcher) as its jobs go. */
import type { Logger } from 'pino'
import type { HealthConfig } from '../config/schema.ts'
import type { OrchestratorError } from '../errors.ts'
import type { Usage } from '../protocol/messages.ts'
import type { UsageLedger } from '../usage/ledger.ts'
import type { AccountHandle } from './account-handle.ts'
import type { Job } from './job.ts'
import type { LazyWorkers } from './parking.ts'
import type { SharedAccountFactory } from './shared.ts'

export interface AccountOwner {
  /** a slot of `account` freed, or the account came up: hand it queued work */
  released(account: AccountHandle): void
  /** the account answered the job; `body` is the JSON message of a non-streamed request */
  finished(job: Job, account: AccountHandle, body: string | undefined, usage: Usage, model: string): void
  /** the account could not answer the job: the owner fails it over or fails it */
  failed(job: Job, account: AccountHandle, error: OrchestratorError): void
  /** the account's session failed for good (until an operator resets it): waiting jobs it was their hope for are answered */
  lost(account: AccountHandle): void
  /** the tool bridge: a live CLI of the account waits on these tool_use ids (parked), or no longer does (unparked) */
  parked(account: AccountHandle, ids: readonly string[]): void
  unparked(ids: readonly string[]): void
}

export interface AccountOptions {
  health: HealthConfig
  ledger: UsageLedger
  log: Logger
  owner: AccountOwner
  now?: () => number
  /**
   * `dispatcher.lazyWorkers`: the worker starts at the account's first request, and stops after `idleMs` without one;
   * `"auto"` decides by the account's session kind (parking.ts). Absent: every worker starts with the account.
   */
  lazy?: LazyWorkers
  /** a fleet (`cluster`): the account's budget, cooldowns and credential shared with the other nodes (shared.ts) */
  shared?: SharedAccountFactory | undefined
}

