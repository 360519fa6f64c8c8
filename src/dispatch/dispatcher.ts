/**
 * The dispatcher owns the global queue and hands each request to one account chosen by a strategy. A request goes,
 * in order of preference: to an account with a free slot now; to a busy account's worker queue
 * (`accountQueueSize`), where it starts the moment a slot frees without a round trip to this thread; to the global
 * queue, where it waits (up to `queueTimeoutMs`) for any account. Only a full global queue answers 529 at once:
 * Claude Code gives up after three 529s, so waiting beats refusing. Which account: placement.ts (a turn's strategy
 * picks packed onto fewer workers: packing.ts).
 *
 * After a failure it has the account judged (cooldown, ejection or nothing: `src/health/verdict.ts`) and fails the
 * request over to another account while no answer byte has reached the client, within a retry budget.
 */
import type { Logger } from 'pino'
import type { AccountConfig, DispatcherConfig, HealthConfig, StrategyName } from '../config/schema.ts'
import { OrchestratorError, specOf } from '../errors.ts'
import type { Usage } from '../protocol/messages.ts'
import { RetryBudget } from '../health/retry-budget.ts'
import { judgeFailure } from '../health/verdict.ts'
import { Watchdog } from '../health/watchdog.ts'
import { metrics } from '../metrics.ts'
import { createStrategies, type Strategy } from '../strategies/index.ts'
import { AccountHandle, type AccountOptions, type AccountOwner } from './account-handle.ts'
import { AccountTable } from './account-table.ts'
import { AffinityTable } from './affinity.ts'
import { JobQueue } from './job-queue.ts'
import { Placer, failoverWorthy, noAccount } from './placement.ts'
import { ToolCallDirectory } from './tool-calls.ts'
import { admit, type Admission } from './admission.ts'
import type { Job, JobSink } from './job.ts'
import type { SharedAccountFactory } from './shared.ts'
import { applyLiveSettings } from './live-settings.ts'
import { startAccounts } from './start-ramp.ts'
import { UsageLedger, countersOf } from '../usage/ledger.ts'

export interface DispatcherOptions {
  health: HealthConfig
  /** usage accounting (and the quotas that read it); a fresh one when not given */
  ledger?: UsageLedger
  log: Logger
  now?: () => number
  /** a fleet (`cluster`): builds each account's shared half (src/dispatch/shared.ts) */
  shared?: SharedAccountFactory | undefined
}

export class Dispatcher implements AccountOwner {
  /** every account (leaving ones too): one array, changed in place at run time (see AccountTable.all) */
  readonly accounts: readonly AccountHandle[]
  readonly #table: AccountTable
  readonly #accountOptions: AccountOptions
  #config: DispatcherConfig
  readonly #log: Logger
  readonly #queue: JobQueue
  readonly #strategies: Record<StrategyName, Strategy>
  readonly #placer: Placer
  readonly affinity: AffinityTable
  /** the tool bridge: which account's CLI waits on a tool_use_id (tool-calls.ts) */
  readonly toolCalls = new ToolCallDirectory<AccountHandle>()
  readonly ledger: UsageLedger
  #dispatchSeq = 0
  #closing = false
  readonly #budget: RetryBudget
  readonly #watchdog: Watchdog

  constructor(config: DispatcherConfig, accounts: readonly AccountConfig[], options: DispatcherOptions) {
    this.#config = config
    this.#log = options.log
    this.#queue = new JobQueue(config.globalQueueSize)
    this.#budget = new RetryBudget({ percent: config.retryBudgetPercent, min: config.retryBudgetMin }, options.now)
    this.#strategies = createStrategies()
    this.affinity = new AffinityTable(config.affinity, options.now)
    this.ledger = options.ledger ?? new UsageLedger(options.now)
    // lazyWorkers is read once, here: a reload that changes it asks for a restart (accounts it adds use this one)
    this.#accountOptions = { ...options, ledger: this.ledger, owner: this, lazy: config.lazyWorkers }
    this.#table = new AccountTable(accounts.map((account) => new AccountHandle(account, this.#accountOptions)))
    this.accounts = this.#table.all
    this.#placer = new Placer(this.affinity, this.#table, Object.values(this.#strategies))
    this.#watchdog = new Watchdog(this.accounts, options.health, this.#afterTick)
  }

  get queued(): number { return this.#queue.size }

  /** requests placed with the turn's open account instead of asking their strategy (packing.ts) */
  get packed(): number { return this.#placer.packed }

  /** The settings in force: those the process started with, and what reloads changed of the live ones. */
  get config(): DispatcherConfig { return this.#config }

  /**
   * A reload's `dispatcher` section: the live settings (LIVE_SETTINGS, and `affinity.enabled`) apply now; the
   * others are named, as `dispatcher.<key>`, for the next start. Both lists are empty when nothing changed.
   */
  reconfigure(next: DispatcherConfig): { applied: string[]; restartRequired: string[] } {
    const { config, applied, restartRequired } = applyLiveSettings(this.#config, next)
    this.#config = config
    this.#queue.capacity = config.globalQueueSize // a smaller queue refuses new requests until it is below
    // strict models changed what a model nobody declares means for requests already waiting
    if (applied.includes('dispatcher.strictModels')) this.#reroute()
    return { applied, restartRequired }
  }

  /** Starts every account's worker, START_RAMP at a time, then the watchdog. */
  async start(): Promise<void> {
    await startAccounts(this.accounts)
    this.#watchdog.start()
  }

  strategy(name: StrategyName = this.#config.strategy): Strategy {
    return this.#strategies[name]
  }

  /** Models any account declares, in config order. */
  get models(): string[] {
    return this.#table.models
  }

  /** The accounts that may serve `model`: those declaring it, else (unless models are strict) every account. */
  candidatesFor(model: string): readonly AccountHandle[] {
    return this.#table.candidatesFor(model, this.#config.strictModels)
  }

  /** Admission (admission.ts): decides the request's route, then places or queues its job; throws what to answer now. */
  admit(admission: Admission, sink: JobSink): Job {
    return admit(this, admission, sink)
  }

  /** Places the job or queues it; throws the 529/503 to answer at once. */
  submit(job: Job): void {
    if (this.#closing) throw new OrchestratorError('AGYC_SHUTTING_DOWN', 'the orchestrator is shutting down')
    if (!job.candidates.some((a) => a.routable || a.recovering)) throw noAccount(job)
    job.timer = setTimeout(this.#expire, this.#config.requestTimeoutMs, job)
    this.#budget.recordRequest(job.receivedAt)
    if (this.#queue.size === 0 && this.#place(job)) return
    if (!this.#queue.push(job)) {
      clearTimeout(job.timer)
      throw new OrchestratorError('AGYC_QUEUE_FULL', `the global queue is full (${this.#queue.capacity} requests waiting)`)
    }
    this.#queued(job)
  }

  #queued(job: Job): void {
    job.state = 'queued'
    const remaining = this.#config.requestTimeoutMs - (Date.now() - job.receivedAt)
    if (this.#config.queueTimeoutMs < remaining) {
      clearTimeout(job.timer)
      job.timer = setTimeout(this.#expire, this.#config.queueTimeoutMs, job)
    }
  }

  /** The client went away: free whatever the job holds. */
  cancel(job: Job): void {
    switch (job.state) {
      case 'queued':
        this.#queue.remove(job)
        break
      case 'assigned':
        job.account?.cancel(job)
        break
      default:
        break
    }
    this.#settle(job)
  }

  #place(job: Job): boolean {
    const account = this.#placer.choose(job, this.#config.accountQueueSize)
    if (!account) return false
    this.#assign(job, account)
    return true
  }

  #assign(job: Job, account: AccountHandle): void {
    const now = Date.now()
    if (job.state === 'queued') {
      // the deadline now covers the answer: what remains of the request timeout
      clearTimeout(job.timer)
      job.timer = setTimeout(this.#expire, Math.max(1, this.#config.requestTimeoutMs - (now - job.receivedAt)), job)
    }
    if (job.attempts === 0) job.assignedAt = now
    job.attempts++
    account.assign(job, ++this.#dispatchSeq)
  }

  released(_account: AccountHandle): void {
    this.#placeQueued()
  }

  // a slot freed or an account came up: waiting jobs go first, in arrival order
  #placeQueued(): void {
    for (let job = this.#queue.head; job; job = this.#queue.head) {
      if (!this.#place(job)) return
      this.#queue.remove(job)
    }
  }

  finished(job: Job, account: AccountHandle, body: string | undefined, usage: Usage, model: string): void {
    const delta = countersOf(usage, false)
    this.ledger.record(account.id, model, delta)
    account.quota?.onRecord()
    account.health.recordSuccess(Date.now() - job.assignedAt)
    account.outlier.recordSuccess()
    this.#settle(job)
    job.sink.done(body, account)
  }

  failed(job: Job, account: AccountHandle, error: OrchestratorError): void {
    const spec = specOf(error.code)
    if (!spec.localOrigin) this.ledger.record(account.id, account.modelFor(job.model), countersOf(undefined, true))
    judgeFailure(account, error, this.#log) // cooldown, ejection, or nothing (health/verdict.ts)
    if (job.state === 'settled') return
    if (error.code === 'AGYC_QUOTA_EXHAUSTED') {
      this.#refusedByFleet(job)
      return
    }
    if (this.#canFailover(job, error)) {
      account.failovers++
      metrics.failover(account.id)
      if (job.tried) job.tried.push(account)
      else job.tried = [account]
      job.candidates = job.candidates.filter((a) => a !== account)
      job.state = 'queued'
      if (this.#place(job)) return
      this.#queue.unshift(job) // keeps its place in line
      this.#queued(job)
      return
    }
    this.#settle(job)
    job.sink.fail(error, account)
  }

  /**
   * The fleet's shared budget refused the account before the job was sent (AccountHandle, shared.ts): the job never
   * ran, so it spends no attempt and no retry budget. The account is out of quota now; another takes the job, or it
   * waits, or, when no candidate is left, gets the 429 (AGYC_QUOTA_EXHAUSTED) a new request would get.
   */
  #refusedByFleet(job: Job): void {
    job.attempts--
    job.state = 'queued'
    if (this.#place(job)) return
    if (job.candidates.some((a) => a.routable || a.recovering)) {
      this.#queue.unshift(job)
      this.#queued(job)
      return
    }
    this.#settle(job)
    job.sink.fail(noAccount(job), undefined)
  }

  #canFailover(job: Job, error: OrchestratorError): boolean {
    return !this.#closing && failoverWorthy(job, error, this.#config.maxAttempts) && this.#budget.tryRetry() // last: it spends the budget
  }

  #settle(job: Job): void {
    job.state = 'settled'
    clearTimeout(job.timer)
  }

  #expire = (job: Job): void => {
    const wasQueued = job.state === 'queued'
    if (job.state === 'settled') return
    const account = job.account
    this.cancel(job)
    job.sink.fail(wasQueued
      ? new OrchestratorError('AGYC_QUEUE_TIMEOUT', `no account was free within ${this.#config.queueTimeoutMs} ms`)
      : new OrchestratorError('AGYC_REQUEST_TIMEOUT', `the request took longer than ${this.#config.requestTimeoutMs} ms`), account)
  }

  /** After each watchdog tick (rescored, hung workers replaced): cooled-down or returning accounts take queued work. */
  #afterTick = (): void => {
    if (this.#queue.size > 0) {
      this.#placeQueued()
      this.#dropHopeless()
    }
  }

  parked(account: AccountHandle, ids: readonly string[]): void {
    this.toolCalls.park(ids, account)
  }

  unparked(ids: readonly string[]): void {
    this.toolCalls.release(ids)
  }

  lost(_account: AccountHandle): void {
    // at once rather than at the next watchdog tick: a client waiting on an account that is not coming back learns so now
    if (this.#queue.size > 0) this.#dropHopeless()
  }

  /** Waiting jobs none of whose accounts will come back without an operator (failed, drained) are answered now. */
  #dropHopeless(): void {
    for (const job of [...this.#queue]) {
      if (job.candidates.some((a) => a.routable || a.recovering)) continue
      this.#queue.remove(job)
      this.#settle(job)
      job.sink.fail(noAccount(job), undefined)
    }
  }

  /** Stop taking requests: new ones get 503. */
  close(): void {
    this.#closing = true
  }

  /** requests accepted and not answered yet (a conversation parked on tool calls holds a slot, but is no request) */
  get inFlight(): number {
    let n = this.#queue.size
    for (const a of this.accounts) n += a.assigned - a.parkedConversations
    return n
  }

  async stop(): Promise<void> {
    this.#closing = true
    this.#watchdog.stop()
    for (const job of [...this.#queue]) {
      this.cancel(job)
      job.sink.fail(new OrchestratorError('AGYC_SHUTTING_DOWN', 'the orchestrator is shutting down'), undefined)
    }
    await Promise.all(this.accounts.map((a) => a.stop()))
  }

  // ── run-time changes (hot reload, src/dispatch/reconcile.ts) ──────────────────────────────────────────────────────
  // Accounts join and leave in place (src/dispatch/account-table.ts): a queued job's `candidates` is `accounts` or a
  // per-model list of the table, so it sees an account added while it waits. A leaving account is drained first:
  // 'draining' and 'stopped' are never `available` nor `routable`, so no strategy picks it even from an older reference.

  /** Adds an account, not started yet: it takes work once `start()` brought it up. */
  addAccount(config: AccountConfig): AccountHandle {
    const account = new AccountHandle(config, this.#accountOptions)
    this.#table.add(account)
    this.#reroute()
    return account
  }

  /**
   * A reload removed or changed the account: from now on it serves no model (it drains what it holds). Its models
   * are served by whoever else declares them; requests waiting for them are routed again at once.
   */
  retireAccount(account: AccountHandle): void {
    this.#table.retire(account)
    this.#reroute()
  }

  /** Forgets an account that was stopped (or never started). */
  removeAccount(account: AccountHandle): void {
    this.#table.remove(account)
    this.#reroute()
  }

  /**
   * The table or strict models changed: route the queued jobs again. A model may have gained its first account (a job
   * that any account could serve now only goes to those that declare it), or lost its last one (the job's definite
   * answer is given now, not at its queue timeout).
   */
  #reroute(): void {
    if (this.#queue.size === 0) return
    for (const job of [...this.#queue]) {
      let candidates: readonly AccountHandle[]
      try {
        candidates = this.candidatesFor(job.model)
      } catch (err) {
        // strict models and nobody serves it any more: the 404 a new request for it gets
        this.#queue.remove(job)
        this.#settle(job)
        job.sink.fail(err as OrchestratorError, undefined)
        continue
      }
      const tried = job.tried
      job.candidates = tried ? candidates.filter((a) => !tried.includes(a)) : candidates
    }
    this.#placeQueued()
  }
}
