/**
 * The account table: which accounts exist, and which of them serve a model. The dispatcher asks it for a request's
 * candidates; a reload (src/dispatch/reconcile.ts) adds, retires and removes accounts through the dispatcher.
 *
 * Its own module because it is the one part of dispatching that knows nothing of the queue: it is an index, kept
 * current in place. Re-routing the jobs that wait when the index changes is the dispatcher's (it owns the queue).
 */
import { OrchestratorError } from '../errors.ts'
import type { AccountHandle } from './account-handle.ts'

export class AccountTable {
  /**
   * Every account, leaving ones included, in config order. One array for the table's life, changed in place: queued
   * jobs hold it as their candidates (a model nobody declares) and callers keep it, so both see accounts come and go.
   */
  readonly all: readonly AccountHandle[]
  readonly #all: AccountHandle[]
  /** per model, the accounts that declare it; lists are rebuilt in place, so a queued job's reference stays current */
  readonly #byModel = new Map<string, AccountHandle[]>()
  /** serving accounts only: while a changed account drains, its id finds its replacement */
  readonly #byId = new Map<string, AccountHandle>()
  /** accounts a reload removed or changed: still draining or stopping, but no longer serving any model */
  readonly #leaving = new Set<AccountHandle>()

  constructor(accounts: AccountHandle[]) {
    this.all = this.#all = accounts
    this.#index()
  }

  /** Models any account declares, in config order. */
  get models(): string[] {
    return [...this.#byModel.keys()]
  }

  /** The serving account with this id, if any. */
  get(id: string): AccountHandle | undefined {
    return this.#byId.get(id)
  }

  /** The accounts that may serve `model`: those declaring it, else (unless `strict`) every account. */
  candidatesFor(model: string, strict: boolean): readonly AccountHandle[] {
    const declared = this.#byModel.get(model)
    if (declared) return declared
    if (strict) throw new OrchestratorError('AGYC_MODEL_NOT_FOUND', `model "${model}" is not served by any account`)
    return this.all
  }

  add(account: AccountHandle): void {
    this.#all.push(account)
    this.#index()
  }

  /** From now on the account serves no model; it stays in `all` until `remove`. */
  retire(account: AccountHandle): void {
    this.#leaving.add(account)
    this.#index()
  }

  remove(account: AccountHandle): void {
    const i = this.#all.indexOf(account)
    if (i >= 0) this.#all.splice(i, 1)
    this.#leaving.delete(account)
    this.#index()
  }

  /**
   * Rebuilds the per-model lists in place, so that references held by queued jobs stay current. A model that lost
   * its last account is dropped (its emptied list with it); the dispatcher routes the queued jobs again after this.
   */
  #index(): void {
    for (const list of this.#byModel.values()) list.length = 0
    this.#byId.clear()
    for (const account of this.#all) {
      if (this.#leaving.has(account)) continue
      this.#byId.set(account.id, account)
      for (const model of account.modelNames) {
        let list = this.#byModel.get(model)
        if (!list) this.#byModel.set(model, list = [])
        list.push(account)
      }
    }
    for (const [model, list] of this.#byModel) if (list.length === 0) this.#byModel.delete(model)
  }
}
