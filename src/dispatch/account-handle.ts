/**
 * The main-thread half of an account: its state and the numbers the strategies read, its requests in flight (found by
 * a per-account sequence number), and the life of its worker (started, restarted after a death with backoff, parked,
 * retired, reset), whose thread and ports are the WorkerLink's (worker-link.ts).
 */
import type { Logger } from 'pino'
import type { AccountConfig, HealthConfig } from '../config/schema.ts'
import { OrchestratorError } from '../errors.ts'
import { Outlier } from '../health/outlier.ts'
import { HealthStats, combine, scoreParts, type ScoreParts } from '../health/score.ts'
import { metrics } from '../metrics.ts'
import { assertNever, type Heartbeat, type Usage, type WorkerStats } from '../protocol/messages.ts'
import { decodeFromWorkerBatch } from '../protocol/wire.ts'
import type { AccountView } from '../strategies/types.ts'
import type { UsageLedger } from '../usage/ledger.ts'
import { Quota } from '../usage/quota.ts'
import type { Job } from './job.ts'
import { Parking, startsParked, type LazyWorkers } from './parking.ts'
import { WorkerLink, killGroups } from './worker-link.ts'

export type AccountState = 'starting' | 'up' | 'down' | 'draining' | 'stopped'

export interface AccountOwner {
  /** a slot of `account` freed, or the account came up: hand it queued work */
  released(account: AccountHandle): void
  /** the account answered the job; `body` is the JSON message of a non-streamed request */
  finished(job: Job, account: AccountHandle, body: string | undefined, usage: Usage, model: string): void
  /** the account could not answer the job: the owner fails it over or fails it */
  failed(job: Job, account: AccountHandle, error: OrchestratorError): void
  /** the account's session failed for good (until an operator resets it): waiting jobs it was their hope for are answered */
  lost(account: AccountHandle): void
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
}

/** child restart-style backoff for a worker that died: 100 ms × 1.5ⁿ with jitter, capped at 15 s (PM2's defaults) */
export const backoffMs = (attempt: number, random: () => number = Math.random): number =>
  Math.min(15_000, 100 * 1.5 ** attempt * (0.8 + random() * 0.4)) // jitter inside the cap: never above 15 s

export class AccountHandle implements AccountView {
  readonly id: string
  readonly config: AccountConfig
  readonly maxConcurrency: number
  readonly weight: number
  state: AccountState = 'starting'
  assigned = 0
  lastAssignedSeq = 0
  healthScore = 1
  scoreParts: ScoreParts = { freshness: 1, success: 1, latency: 1, loop: 1, streak: 1 }
  readonly outlier: Outlier
  /** budgets, when the account has any */
  readonly quota: Quota | undefined
  readonly health = new HealthStats()
  /** the session's long-lived upstream serves (always true for kinds without one) */
  sessionUp = true
  sessionState = 'up'
  lastHeartbeat: Heartbeat | undefined
  lastHeartbeatAt = 0
  workerRestarts = 0
  failovers = 0
  lastError: string | undefined
  readonly childPids = new Set<number>()

  readonly #log: Logger
  readonly #owner: AccountOwner
  readonly #health: HealthConfig
  readonly #link: WorkerLink
  readonly #pending = new Map<number, Job>()
  #seq = 0
  #ready: PromiseWithResolvers<void> = Promise.withResolvers()
  #reattach: NodeJS.Timeout | undefined
  #stopping = false
  /**
   * An operator or a reload asked the account to drain: it takes no new work until resumed, even when a worker that
   * was starting (or restarting) becomes ready meanwhile. `state` says 'draining' whenever it would otherwise say 'up'.
   */
  #draining = false
  /** lazy workers, when this account has them (`startsParked`); see #park */
  readonly #parking: Parking | undefined
  constructor(config: AccountConfig, options: AccountOptions) {
    this.id = config.id
    this.config = config
    this.maxConcurrency = config.maxConcurrency
    this.weight = config.weight
    this.#log = options.log.child({ account: config.id })
    this.#owner = options.owner
    this.#health = options.health
    this.#parking = options.lazy && startsParked(options.lazy.enabled, config.session) ? new Parking(options.lazy.idleMs) : undefined
    this.outlier = new Outlier(options.health, options.now)
    this.quota = config.quota ? new Quota(config.id, config.quota, options.ledger, options.now) : undefined
    this.#link = new WorkerLink(config, options.health.heartbeatMs, this.#log, {
      message: this.#onMessage,
      ended: (err) => this.#ended(err),
      holding: () => this.state === 'starting', // a lazily started or reset worker takes its first requests once ready
    })
  }

  /** up, not cooling or ejected, with a free slot now: what strategies look for */
  get available(): boolean {
    return this.state === 'up' && (this.#parking === undefined || this.#parking.admits()) && this.sessionUp && this.assigned < this.maxConcurrency && this.outlier.admits()
      && (this.quota === undefined || this.quota.admits(this.assigned))
  }

  /**
   * May be handed work (into its worker queue when busy). A worker starting for a request counts: what it is handed
   * waits in the outbox until it is ready, as it would in a busy worker's queue, so a conversation's next turn goes
   * home rather than waking another account, and work that finds every account busy queues there.
   */
  get routable(): boolean {
    return (this.state === 'up' ? this.#parking === undefined || this.#parking.admits() : this.#parking?.waking === true && !this.#draining && !this.#stopping)
      && this.sessionUp && this.outlier.admits() && (this.quota === undefined || this.quota.admits(this.assigned))
  }

  get quotaLeft(): number {
    return this.quota === undefined ? 1 : this.quota.left(this.assigned)
  }

  /** not serving now, but coming back without an operator: worth queueing for (its worker or child restarting) */
  get recovering(): boolean {
    return (this.parked && this.state === 'up') || this.state === 'starting' || this.state === 'down' || (this.state === 'up' && !this.sessionUp && this.sessionState !== 'failed')
  }

  /** Why the account takes no work now, in a few words for an error message. */
  unavailableReason(): string {
    if (this.state !== 'up') return this.state
    if (!this.sessionUp) return `session ${this.sessionState}${this.lastError ? ` (${this.lastError.slice(0, 120)})` : ''}`
    const outlier = this.outlier.state()
    if (outlier !== 'ok') return outlier === 'cooling' ? 'cooling down' : outlier
    if (this.quota && !this.quota.admits(this.assigned)) return 'out of quota'
    return 'busy'
  }

  /** Recomputes the health score (the watchdog calls it once per heartbeat period). */
  rescore(now: number, fleetLatencyMs: number): void {
    if (this.parked) this.lastHeartbeatAt = now // no worker, no heartbeats: nothing is known against the account
    const hb = this.#health.heartbeatMs
    this.scoreParts = scoreParts({
      heartbeatAgeMs: this.state === 'up' || this.state === 'draining' ? now - this.lastHeartbeatAt : Number.POSITIVE_INFINITY,
      heartbeatMs: hb,
      missedHeartbeats: this.#health.missedHeartbeats,
      successEwma: this.health.successEwma,
      latencyEwmaMs: this.health.latencyEwmaMs,
      fleetLatencyMs,
      loopDelayMs: this.lastHeartbeat?.loopDelayMs ?? 0,
      consecutiveFailures: this.health.consecutiveFailures,
    })
    this.healthScore = combine(this.scoreParts)
  }

  /** The worker missed its heartbeats (a hung event loop): end the thread; piscina starts a replacement. */
  terminate(reason: string): void {
    if (this.parked) return
    this.#log.error({ reason }, 'terminating account worker')
    this.lastError = reason
    this.#link.terminate()
  }

  /** The model this account runs for a request naming `requested`. */
  modelFor(requested: string): string {
    const alias = this.config.aliases?.[requested]
    if (alias !== undefined) return alias
    const models = this.config.models
    return !models || models.includes(requested) ? requested : models[0]
  }

  /** The names this account answers to: its models and its aliases (empty: it serves any model). */
  get modelNames(): string[] {
    return [...(this.config.models ?? []), ...Object.keys(this.config.aliases ?? {})]
  }

  /** Starts the worker; resolves once its session is ready (or the first start failed). With lazy workers: at once. */
  start(): Promise<void> {
    if (this.#parking) {
      this.#park(this.#parking)
      return Promise.resolve()
    }
    this.#attach()
    return this.#ready.promise
  }

  /** lazy workers: no worker runs now */
  get parked(): boolean {
    return this.#parking?.parked === true
  }

  /**
   * Lazy workers: the account takes work without a worker; its first request starts one (#wake). It looks up and
   * healthy meanwhile: nothing is known against it, and a parked account that looked unavailable would never be woken.
   */
  #park(parking: Parking): void {
    this.state = this.#draining ? 'draining' : 'up'
    this.sessionUp = true
    this.sessionState = 'up'
    this.lastHeartbeatAt = Date.now()
    parking.park(this.lastHeartbeatAt)
    this.#owner.released(this)
  }

  /** Lazy workers: a request came for a parked account. Its commands wait in the outbox until the worker is ready. */
  #wake(parking: Parking): void {
    parking.wake()
    this.state = 'starting'
    this.#log.debug('starting the account worker for a request')
    this.#attach()
  }

  /** Lazy workers with idleMs, on each heartbeat: stop a worker that has had no request for idleMs, and park. */
  #parkIfIdle(parking: Parking, now: number): void {
    if (!parking.idle(now, this.#seq, this.#pending.size)) return
    if (this.state !== 'up' || !this.sessionUp || this.#stopping || !this.#link.attached) return
    this.#log.debug({ idleMs: parking.idleMs }, 'stopping an idle account worker')
    this.#retireWorker()
    this.#park(parking)
  }

  /**
   * Stops the current worker quietly, for a reason of ours (idle, an operator's reset): its last events (its session
   * going down, its children reaped) are not news about the account, and nothing is counted against it. Whatever it
   * still holds must have been answered already. A next worker may be attached at once: piscina runs its attach task
   * once this one has ended.
   */
  #retireWorker(): void {
    this.#link.retire([...this.childPids])
    this.childPids.clear()
  }

  #attach(): void {
    // a new worker, a new session: its own events say otherwise from here on
    this.sessionUp = true
    this.sessionState = 'up'
    this.#link.attach()
  }

  /** The attach task ended: the worker stopped on request, or died. Either way its requests get a definite answer. */
  #ended(err: unknown): void {
    this.#parking?.woke()
    this.killChildren()
    const message = err instanceof Error ? err.message : String(err ?? 'stopped')
    this.#failAll(new OrchestratorError('AGYC_WORKER_DIED', `account ${this.id}: worker ended (${message})`))
    if (this.#stopping) {
      this.state = 'stopped'
      this.#ready.resolve() // a drain or start() waiting for this worker is not kept waiting
      return
    }
    this.state = 'down'
    this.lastError = message
    this.health.recordFailure()
    if (this.outlier.recordFailure()) metrics.ejection(this.id)
    const delay = backoffMs(this.workerRestarts++)
    this.#log.error({ err, restartInMs: Math.round(delay) }, 'account worker died')
    this.#ready.resolve() // start() callers are not kept waiting on a worker that will not come up soon
    this.#reattach = setTimeout(() => {
      this.#reattach = undefined
      if (!this.#stopping) this.#attach()
    }, delay)
  }

  #failAll(error: OrchestratorError): void {
    const jobs = [...this.#pending.values()]
    this.#pending.clear()
    this.assigned = 0
    for (const job of jobs) this.#owner.failed(job, this, error)
  }

  /** SIGKILL every process group the worker reported: a child outlives the worker thread that spawned it. */
  killChildren(): void {
    killGroups(this.childPids)
    this.childPids.clear()
  }

  assign(job: Job, dispatchSeq: number): void {
    if (this.#parking?.parked) this.#wake(this.#parking)
    job.seq = ++this.#seq
    job.account = this
    job.state = 'assigned'
    this.assigned++
    this.lastAssignedSeq = dispatchSeq
    this.outlier.onAssign()
    this.#pending.set(job.seq, job)
    this.#link.send({ kind: 'run', id: job.seq, ...job.request, model: this.modelFor(job.model) })
  }

  /** The client left or the deadline passed: free the slot now; the worker stops the work. */
  cancel(job: Job): void {
    if (this.#pending.get(job.seq) !== job) return
    this.#pending.delete(job.seq)
    this.assigned--
    if (this.outlier.probing) this.outlier.onAbandon()
    this.#link.send({ kind: 'cancel', id: job.seq })
    this.#owner.released(this)
  }

  #onMessage = (raw: unknown): void => {
    for (const event of decodeFromWorkerBatch(raw)) {
      switch (event.kind) {
        case 'chunk': {
          this.#pending.get(event.id)?.sink.chunk(event.text)
          break
        }
        case 'done': {
          const job = this.#take(event.id)
          if (job) {
            this.#owner.finished(job, this, event.body, event.usage, event.model)
            this.#owner.released(this)
          }
          break
        }
        case 'failed': {
          const job = this.#take(event.id)
          this.lastError = `${event.code}: ${event.message}`
          if (job) {
            this.#owner.failed(job, this, new OrchestratorError(event.code, event.message, { retryAfterS: event.retryAfterS }))
            this.#owner.released(this)
          }
          break
        }
        case 'heartbeat':
          this.lastHeartbeat = event
          this.lastHeartbeatAt = Date.now()
          if (this.#parking !== undefined && this.#parking.idleMs > 0) this.#parkIfIdle(this.#parking, this.lastHeartbeatAt)
          break
        case 'ready':
          // The session may have reported its upstream down during start (a stdio child whose first start failed is
          // restarting): that stands. #attach assumed the fresh session up; only the session's own events change it.
          // (test/sessions.stdio.test.ts, "…whose child failed its first start takes no work…")
          this.#ready.resolve()
          this.#parking?.woke()
          if (this.#stopping) break // its stop is under way: it must not take work now
          this.state = this.#draining ? 'draining' : 'up'
          this.lastHeartbeatAt = Date.now()
          this.#log.debug('account ready')
          this.#link.flush() // what a lazily started worker was started for
          this.#owner.released(this)
          break
        case 'session': {
          const wasUp = this.sessionUp
          this.sessionUp = event.up
          this.sessionState = event.state
          if (!event.up) {
            if (event.reason !== undefined) this.lastError = event.reason
            if (wasUp) {
              // one failure for the outage, however many requests it takes with it (their failures are not counted),
              // and however it goes on (restarting, failed, reset and restarting again)
              this.health.recordFailure()
              if (this.outlier.recordFailure()) metrics.ejection(this.id)
            }
            // a restarting child is worth waiting for (queued jobs stay); a failed one is not coming back by itself
            if (event.state === 'failed') this.#owner.lost(this)
          } else this.#owner.released(this)
          break
        }
        case 'child':
          if (event.alive) this.childPids.add(event.pid)
          else this.childPids.delete(event.pid)
          break
        case 'log':
          this.#log[event.level](event.fields ?? {}, event.msg)
          break
        default:
          assertNever(event)
      }
    }
  }

  /** The job left this account; the caller hands the slot on once the owner has dealt with the job. */
  #take(id: number): Job | undefined {
    const job = this.#pending.get(id)
    if (!job) return undefined // cancelled meanwhile
    this.#pending.delete(id)
    this.assigned--
    return job
  }

  stats(): Promise<WorkerStats> {
    const control = this.#link.control
    if (!control) return Promise.reject(new OrchestratorError('AGYC_WORKER_DIED', `account ${this.id} has no worker`))
    return control.stats()
  }

  /**
   * Stops taking new work and resolves when nothing is in flight. A worker still starting is let finish its start
   * first: stopped half-way, its 'ready' could race the stop, and a stop is cleaner on a session that is up.
   */
  async drain(): Promise<void> {
    this.#draining = true
    if (this.state === 'up') this.state = 'draining'
    if (this.state === 'starting' && this.#link.attached) await this.#ready.promise
    while (this.#pending.size > 0) await new Promise((r) => setTimeout(r, 20))
  }

  /**
   * An operator's reset: cooldown and ejection cleared, and out of `failed`. A session that can restart its child does
   * so (a crash loop's supervisor); one that was decided for good when it was built (a CLI not installed or not logged
   * in: `agyc accounts login`, then reset) gets a fresh worker, which builds it anew; a worker waiting out its restart
   * backoff starts now.
   */
  async reset(): Promise<void> {
    this.outlier.reset()
    if (this.#stopping || this.parked) {
      this.#owner.released(this)
      return
    }
    if (this.#reattach !== undefined) {
      clearTimeout(this.#reattach)
      this.#reattach = undefined
      this.#fresh('restarting the account worker now (reset)')
    } else if (this.#link.control !== undefined && !(await this.#link.control.reset()) && this.sessionState === 'failed' && this.#link.attached) {
      this.#failAll(new OrchestratorError('AGYC_WORKER_DIED', `account ${this.id}: its worker was restarted by a reset`))
      this.#retireWorker()
      this.#fresh('restarting the account worker for a session that cannot restart itself (reset)')
    }
    this.#owner.released(this)
  }

  /** A new worker for the account; it takes work once it reports ready. */
  #fresh(why: string): void {
    this.#log.info(why)
    this.state = 'starting'
    this.#ready = Promise.withResolvers<void>()
    this.#attach()
  }

  resume(): void {
    this.#draining = false
    if (this.state === 'draining') {
      this.state = 'up'
      this.#owner.released(this)
    }
  }

  /** Stops the session, its child and the worker; requests still pending get AGYC_SHUTTING_DOWN. */
  async stop(): Promise<void> {
    this.#stopping = true
    clearTimeout(this.#reattach)
    await this.#link.stop()
    this.#failAll(new OrchestratorError('AGYC_SHUTTING_DOWN', `account ${this.id} stopped`))
    await this.#link.close()
    this.killChildren()
    this.state = 'stopped'
    this.#ready.resolve() // also for an account stopped before it ever started
  }
}
