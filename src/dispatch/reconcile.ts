/**
 * Hot reload of the accounts: brings the dispatcher's accounts to a new configuration without dropping a request.
 * New accounts start; removed ones drain (finish what they hold, take nothing new) and then stop; changed ones drain,
 * stop, and start again with their new configuration. A changed account's replacement joins the dispatcher at once,
 * in state 'starting', and is started once the old one has stopped: requests for it wait in the global queue instead
 * of being refused, and two workers never run one account's session (and state directory) at the same time.
 */
import { isDeepStrictEqual } from 'node:util'
import type { Logger } from 'pino'
import type { AccountConfig } from '../config/schema.ts'
import { forgetAccount } from '../metrics.ts'
import type { AccountHandle } from './account-handle.ts'
import type { Dispatcher } from './dispatcher.ts'
import { startAccounts } from './start-ramp.ts'

export interface ReconcilePlan {
  added: string[]
  removed: string[]
  restarted: string[]
  unchanged: string[]
}

export class Reconciler {
  readonly #dispatcher: Dispatcher
  readonly #log: Logger
  /** accounts on their way out: draining, then stopping */
  readonly #retiring = new Set<AccountHandle>()
  readonly #pending = new Set<Promise<void>>()
  #closed = false
  /** reloads run one after another */
  #last: Promise<unknown> = Promise.resolve()

  constructor(dispatcher: Dispatcher, log: Logger) {
    this.#dispatcher = dispatcher
    this.#log = log
  }

  /** true while the account drains or stops because a reload removed or changed it */
  retiring(account: AccountHandle): boolean {
    return this.#retiring.has(account)
  }

  /** Applies `configs`; resolves once new accounts are up (or failed to start) and the leaving ones are draining. */
  apply(configs: readonly AccountConfig[]): Promise<ReconcilePlan> {
    const run = this.#last.then(() => this.#apply(configs))
    this.#last = run.catch(() => {})
    return run
  }

  async #apply(configs: readonly AccountConfig[]): Promise<ReconcilePlan> {
    const plan: ReconcilePlan = { added: [], removed: [], restarted: [], unchanged: [] }
    const current = new Map<string, AccountHandle>()
    for (const a of this.#dispatcher.accounts) if (!this.#retiring.has(a)) current.set(a.id, a)
    const starting: AccountHandle[] = []
    for (const config of configs) {
      const old = current.get(config.id)
      current.delete(config.id)
      if (!old) {
        starting.push(this.#dispatcher.addAccount(config))
        plan.added.push(config.id)
      } else if (isDeepStrictEqual(old.config, config)) {
        plan.unchanged.push(config.id)
      } else {
        this.#retire(old, this.#dispatcher.addAccount(config))
        plan.restarted.push(config.id)
      }
    }
    for (const old of current.values()) {
      this.#retire(old, undefined)
      plan.removed.push(old.id)
    }
    this.#log.info(plan, 'reloading accounts')
    await startAccounts(starting, () => !this.#closed) // START_RAMP at a time, as at start-up
    return plan
  }

  #retire(old: AccountHandle, replacement: AccountHandle | undefined): void {
    this.#retiring.add(old)
    this.#dispatcher.retireAccount(old)
    const done = (async () => {
      await old.drain()
      await old.stop()
      this.#dispatcher.removeAccount(old)
      this.#retiring.delete(old)
      if (replacement) {
        // a later reload may have retired the replacement before it ever started
        if (!this.#closed && !this.#retiring.has(replacement) && this.#dispatcher.accounts.includes(replacement)) await replacement.start()
      } else if (!this.#dispatcher.accounts.some((a) => a.id === old.id)) {
        forgetAccount(old.id)
      }
      this.#log.info({ account: old.id, restarted: replacement !== undefined }, replacement ? 'account restarted' : 'account removed')
    })().catch((err: unknown) => this.#log.error({ err, account: old.id }, 'retiring an account failed'))
    this.#pending.add(done)
    void done.finally(() => this.#pending.delete(done))
  }

  /** Resolves when every drain and restart begun so far has finished (tests, shutdown). */
  async settled(): Promise<void> {
    await this.#last
    while (this.#pending.size > 0) await Promise.all(this.#pending)
  }

  /** Shutdown: start nothing more. */
  close(): void {
    this.#closed = true
  }
}
