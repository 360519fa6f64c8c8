/**
 * The dispatcher owns the global queue and hands each request to one account chosen by a strategy. A request goes,
 * in order of preference: to an account with a free slot now; to a busy account's worker queue
 * (`accountQueueSize`), where it starts the moment a slot frees without a round trip to this thread; to the global
 * queue, where it waits (up to `queueTimeoutMs`) for any account. Only a full global queue answers 529 at once:
 * Claude Code gives up after three 529s, so waiting beats refusing.
 */
import type { Logger } from 'pino'
import type { AccountConfig, DispatcherConfig, StrategyName } from '../config/schema.ts'
import { OrchestratorError } from '../errors.ts'
import { createStrategies, type Strategy } from '../strategies/index.ts'
import { AccountHandle, type AccountOptions, type AccountOwner } from './account-handle.ts'
import { JobQueue } from './job-queue.ts'
import type { Job } from './job.ts'

export class Dispatcher implements AccountOwner {
  readonly accounts: readonly AccountHandle[]
  /** the same array as `accounts`, changed in place at run time: queued jobs hold references to it (candidates) */
  readonly #accounts: AccountHandle[]
  readonly #accountOptions: AccountOptions
  readonly config: DispatcherConfig
  readonly #queue: JobQueue
  readonly #strategies: Record<StrategyName, Strategy>
  readonly #byModel = new Map<string, AccountHandle[]>()
  #dispatchSeq = 0
  #closing = false

  constructor(config: DispatcherConfig, accounts: readonly AccountConfig[], options: { heartbeatMs: number; log: Logger }) {
    this.config = config
    this.#queue = new JobQueue(config.globalQueueSize)
    this.#strategies = createStrategies()
    this.#accountOptions = { ...options, owner: this }
    this.accounts = this.#accounts = accounts.map((account) => new AccountHandle(account, this.#accountOptions))
    this.#indexModels()
  }

  get queued(): number { return this.#queue.size }

  /** Starts every account's worker, at most 8 at a time (worker start-up loads both cores). */
  async start(): Promise<void> {
    const pending = [...this.accounts]
    const startNext = async (): Promise<void> => {
      for (let account = pending.shift(); account; account = pending.shift()) await account.start()
    }
    await Promise.all(Array.from({ length: Math.min(8, pending.length) }, startNext))
  }

  strategy(name: StrategyName = this.config.strategy): Strategy {
    return this.#strategies[name]
  }

  /** Models any account declares, in config order. */
  get models(): string[] {
    return [...this.#byModel.keys()]
  }

  /** The accounts that may serve `model`: those declaring it, else (unless models are strict) every account. */
  candidatesFor(model: string): readonly AccountHandle[] {
    const declared = this.#byModel.get(model)
    if (declared) return declared
    if (this.config.strictModels) throw new OrchestratorError('AGYC_MODEL_NOT_FOUND', `model "${model}" is not served by any account`)
    return this.accounts
  }

  /** Places the job or queues it; throws the 529/503 to answer at once. */
  submit(job: Job): void {
    if (this.#closing) throw new OrchestratorError('AGYC_SHUTTING_DOWN', 'the orchestrator is shutting down')
    if (!job.candidates.some((a) => a.state === 'up' || a.state === 'starting' || a.state === 'down')) {
      throw new OrchestratorError('AGYC_NO_ACCOUNT', `no account can serve "${job.model}" now (all drained or stopped)`)
    }
    job.timer = setTimeout(this.#expire, this.config.requestTimeoutMs, job)
    if (this.#queue.size === 0 && this.#place(job)) return
    if (!this.#queue.push(job)) {
      clearTimeout(job.timer)
      throw new OrchestratorError('AGYC_QUEUE_FULL', `the global queue is full (${this.#queue.capacity} requests waiting)`)
    }
    job.state = 'queued'
    if (this.config.queueTimeoutMs < this.config.requestTimeoutMs) {
      clearTimeout(job.timer)
      job.timer = setTimeout(this.#expire, this.config.queueTimeoutMs, job)
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
    job.state = 'settled'
    clearTimeout(job.timer)
  }

  #place(job: Job): boolean {
    const account = job.strategy.pick(job.candidates) ?? this.#leastQueued(job.candidates)
    if (!account) return false
    this.#assign(job, account)
    return true
  }

  /** Every account is busy: the one with the shortest worker queue that still has room. */
  #leastQueued(candidates: readonly AccountHandle[]): AccountHandle | undefined {
    const room = this.config.accountQueueSize
    let best: AccountHandle | undefined
    for (const a of candidates) {
      if (a.routable && a.assigned - a.maxConcurrency < room && (!best || a.assigned - a.maxConcurrency < best.assigned - best.maxConcurrency)) best = a
    }
    return best
  }

  #assign(job: Job, account: AccountHandle): void {
    const elapsed = Date.now() - job.receivedAt
    if (job.state === 'queued') {
      // the deadline now covers the answer: what remains of the request timeout
      clearTimeout(job.timer)
      job.timer = setTimeout(this.#expire, Math.max(1, this.config.requestTimeoutMs - elapsed), job)
    }
    job.assignedAt = job.receivedAt + elapsed
    account.assign(job, ++this.#dispatchSeq)
  }

  released(_account: AccountHandle): void {
    // a slot freed or an account came up: waiting jobs go first, in arrival order
    for (let job = this.#queue.head; job; job = this.#queue.head) {
      if (!this.#place(job)) return
      this.#queue.remove(job)
    }
  }

  settled(job: Job): void {
    job.state = 'settled'
    clearTimeout(job.timer)
  }

  #expire = (job: Job): void => {
    const wasQueued = job.state === 'queued'
    if (job.state === 'settled') return
    const account = job.account
    this.cancel(job)
    job.sink.fail(wasQueued
      ? new OrchestratorError('AGYC_QUEUE_TIMEOUT', `no account was free within ${this.config.queueTimeoutMs} ms`)
      : new OrchestratorError('AGYC_REQUEST_TIMEOUT', `the request took longer than ${this.config.requestTimeoutMs} ms`), account)
  }

  /** Stop taking requests: new ones get 503. */
  close(): void {
    this.#closing = true
  }

  get inFlight(): number {
    let n = this.#queue.size
    for (const a of this.accounts) n += a.assigned
    return n
  }

  async stop(): Promise<void> {
    this.#closing = true
    for (const job of [...this.#queue]) {
      this.cancel(job)
      job.sink.fail(new OrchestratorError('AGYC_SHUTTING_DOWN', 'the orchestrator is shutting down'), undefined)
    }
    await Promise.all(this.accounts.map((a) => a.stop()))
  }

  // ── run-time changes (hot reload, src/dispatch/reconcile.ts) ──────────────────────────────────────────────────────
  // Accounts join and leave in place: a queued job's `candidates` is `accounts` or a list of `#byModel`, so it sees
  // an account added while it waits. A leaving account is drained first: 'draining' and 'stopped' are never
  // `available` nor `routable`, so no strategy picks it even from an older reference.

  /** Adds an account, not started yet: it takes work once `start()` brought it up. */
  addAccount(config: AccountConfig): AccountHandle {
    const account = new AccountHandle(config, this.#accountOptions)
    this.#accounts.push(account)
    this.#indexModels()
    return account
  }

  /** Forgets an account that was stopped (or never started). */
  removeAccount(account: AccountHandle): void {
    const i = this.#accounts.indexOf(account)
    if (i >= 0) this.#accounts.splice(i, 1)
    this.#indexModels()
  }

  /** Rebuilds the per-model lists in place, so that references held by queued jobs stay current. */
  #indexModels(): void {
    for (const list of this.#byModel.values()) list.length = 0
    for (const account of this.#accounts) {
      for (const model of account.config.models ?? []) {
        let list = this.#byModel.get(model)
        if (!list) this.#byModel.set(model, list = [])
        list.push(account)
      }
    }
    for (const [model, list] of this.#byModel) if (list.length === 0) this.#byModel.delete(model)
  }
}
