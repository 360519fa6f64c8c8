/**
 * The main-thread half of an account: its state and the numbers the strategies read, and its requests in flight
 * (found by a per-account sequence number), settled from its worker's events. The life of its worker (started,
 * restarted after a death, parked, reset, stopped) is its AccountLifecycle's (account-lifecycle.ts).
 */
import type { Logger } from 'pino'
import type { AccountConfig, HealthConfig } from '../config/schema.ts'
import { OrchestratorError } from '../errors.ts'
import { Outlier } from '../health/outlier.ts'
import { HealthStats, combine, scoreParts, type ScoreParts } from '../health/score.ts'
import { metrics } from '../metrics.ts'
import { assertNever, type Heartbeat, type WorkerStats } from '../protocol/messages.ts'
import { decodeFromWorkerBatch } from '../protocol/wire.ts'
import type { AccountView } from '../strategies/types.ts'
import { Quota } from '../usage/quota.ts'
import { AccountLifecycle, type AccountState, type LifecycleHost } from './account-lifecycle.ts'
import type { Job } from './job.ts'
import { ParkedCalls } from './tool-calls.ts'
import { ParseWindow } from './parse-window.ts'
import type { SharedAccount } from './shared.ts'

export { backoffMs, type AccountState } from './account-lifecycle.ts'

import type { AccountOptions, AccountOwner } from './account-owner.ts'

export type { AccountOptions, AccountOwner }

export class AccountHandle implements AccountView, LifecycleHost {
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
  /** with a fleet: what this account shares with the other nodes (shared.ts); undefined otherwise */
  readonly shared: SharedAccount | undefined

  readonly #log: Logger
  readonly #owner: AccountOwner
  readonly #health: HealthConfig
  readonly #life: AccountLifecycle
  readonly #pending = new Map<number, Job>()
  #seq = 0
  /** the tool bridge: conversations whose CLI waits on the client's tool results, each holding a slot (`assigned`) */
  readonly #parked = new ParkedCalls()
  /** while its worker parses a large body it was handed (parse-window.ts) */
  readonly parsing = new ParseWindow()

  constructor(config: AccountConfig, options: AccountOptions) {
    this.id = config.id
    this.config = config
    this.maxConcurrency = config.maxConcurrency
    this.weight = config.weight
    this.#log = options.log.child({ account: config.id })
    this.#owner = options.owner
    this.#health = options.health
    this.outlier = new Outlier(options.health, options.now)
    this.quota = config.quota ? new Quota(config.id, config.quota, options.ledger, options.now) : undefined
    this.#life = new AccountLifecycle(this, config, options.health.heartbeatMs, this.#log, options.lazy)
    this.shared = options.shared?.(this)
  }

  // ── what the lifecycle reads (LifecycleHost) ──
  get pendingCount(): number { return this.#pending.size }
  get seq(): number { return this.#seq }
  released(): void { this.#owner.released(this) }

  /** up, not cooling or ejected, with a free slot now, not busy parsing a large body: what strategies look for */
  get available(): boolean {
    return this.state === 'up' && this.#life.admits && this.sessionUp && this.assigned < this.maxConcurrency && this.outlier.admits()
      && (this.quota === undefined || this.quota.admits(this.assigned)) && !this.parsing.busy
  }

  /**
   * May be handed work (into its worker queue when busy). A worker starting for a request counts: what it is handed
   * waits in the outbox until it is ready, as it would in a busy worker's queue, so a conversation's next turn goes
   * home rather than waking another account, and work that finds every account busy queues there.
   */
  get routable(): boolean {
    return (this.state === 'up' ? this.#life.admits : this.#life.waking && !this.#life.draining && !this.#life.stopping)
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
    this.#life.terminate(reason)
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
    return this.#life.start()
  }

  /** lazy workers: no worker runs now */
  get parked(): boolean {
    return this.#life.parked
  }

  /** Every pending request gets `error`: the worker that held them is gone (LifecycleHost). */
  failAll(error: OrchestratorError): void {
    const jobs = [...this.#pending.values()]
    this.#pending.clear()
    this.assigned = 0
    // the worker is gone, and the CLIs parked on tool calls with it
    if (this.#parked.calls > 0) this.#owner.unparked(this.#parked.clear())
    for (const job of jobs) {
      this.shared?.end(job, 0)
      this.#owner.failed(job, this, error)
    }
  }

  /** tool calls a live CLI of this account waits on (the tool bridge) */
  get parkedCalls(): number { return this.#parked.calls }
  /** conversations parked on tool calls, each holding one slot (`assigned`) */
  get parkedConversations(): number { return this.#parked.conversations }

  /** A conversation's answer ended on tool calls its CLI now waits on: it keeps a slot until continued or ended. */
  #park(ids: readonly string[]): void {
    this.#parked.park(ids)
    this.assigned++
    this.#owner.parked(this, ids)
  }

  /** The calls were continued or ended: a conversation with none left gives its slot back. True if one did. */
  #unpark(ids: readonly string[]): boolean {
    const { gone, freed } = this.#parked.unpark(ids)
    this.assigned -= freed
    if (gone.length > 0) this.#owner.unparked(gone)
    return freed > 0
  }

  /** SIGKILL every process group the worker reported: a child outlives the worker thread that spawned it. */
  killChildren(): void {
    this.#life.killChildren()
  }

  assign(job: Job, dispatchSeq: number): void {
    this.#life.beforeSend()
    // a continuation takes over the slot its parked conversation held
    if (job.continues !== undefined) this.#unpark(job.continues)
    job.seq = ++this.#seq
    job.account = this
    job.state = 'assigned'
    this.assigned++
    this.lastAssignedSeq = dispatchSeq
    this.outlier.onAssign()
    this.#pending.set(job.seq, job)
    const reserved = this.shared?.reserve(job) // a fleet budget: one Redis round trip first (shared.ts)
    if (reserved === undefined) this.#send(job)
    else void reserved.then((waitMs) => this.#reserved(job, waitMs))
  }

  #send(job: Job): void {
    this.parsing.opened(job.request.body.length)
    this.#life.send({ kind: 'run', id: job.seq, ...job.request, model: this.modelFor(job.model) })
  }

  /**
   * The fleet's budget answered. The slot was held meanwhile (`assigned`), so local concurrency never overshoots.
   * Refused: the account is out of quota until the budget has room, and the job goes back to the dispatcher, which
   * places it elsewhere without counting an attempt (Dispatcher.failed).
   */
  #reserved(job: Job, waitMs: number): void {
    if (this.#pending.get(job.seq) !== job) {
      this.shared?.end(job, undefined) // cancelled while reserving: it never ran
      return
    }
    if (waitMs <= 0) {
      this.#send(job)
      return
    }
    this.#take(job.seq)
    this.quota?.refuse(Date.now() + waitMs)
    this.#owner.failed(job, this, new OrchestratorError('AGYC_QUOTA_EXHAUSTED', `account "${this.id}" has used its fleet-wide budget`,
      { retryAfterS: waitMs / 1000 }))
    this.#owner.released(this)
  }

  /** Flow control (workers/run.ts): the job's client took `taken` characters of its stream; the worker may send more. */
  ack(job: Job, taken: number): void {
    if (this.#pending.get(job.seq) === job) this.#life.send({ kind: 'ack', id: job.seq, taken })
  }

  /** The client left or the deadline passed: free the slot now; the worker stops the work. */
  cancel(job: Job): void {
    if (this.#pending.get(job.seq) !== job) return
    this.#pending.delete(job.seq)
    this.assigned--
    this.shared?.end(job, 0)
    if (this.outlier.probing) this.outlier.onAbandon()
    this.#life.send({ kind: 'cancel', id: job.seq })
    this.#owner.released(this)
  }

  /** The worker's events, as they crossed (LifecycleHost). */
  onMessage = (raw: unknown): void => {
    for (const event of decodeFromWorkerBatch(raw)) {
      switch (event.kind) {
        case 'chunk': {
          this.#pending.get(event.id)?.sink.chunk(event.text)
          break
        }
        case 'done': {
          const job = this.#take(event.id)
          if (event.parked !== undefined) this.#park(event.parked) // also when the client left meanwhile: the CLI waits
          if (job) {
            this.shared?.end(job, event.usage.input_tokens + event.usage.output_tokens)
            this.#owner.finished(job, this, event.body, event.usage, event.model)
            this.#owner.released(this)
          }
          break
        }
        case 'unparked':
          if (this.#unpark(event.ids)) this.#owner.released(this)
          break
        case 'failed': {
          const job = this.#take(event.id)
          this.lastError = `${event.code}: ${event.message}`
          if (job) {
            this.shared?.end(job, 0)
            this.#owner.failed(job, this, new OrchestratorError(event.code, event.message, { retryAfterS: event.retryAfterS }))
            this.#owner.released(this)
          }
          break
        }
        case 'heartbeat':
          this.lastHeartbeat = event
          this.lastHeartbeatAt = Date.now()
          this.#life.heartbeat(this.lastHeartbeatAt)
          break
        case 'ready':
          // The session may have reported its upstream down during start (a stdio child whose first start failed is
          // restarting): that stands. #attach assumed the fresh session up; only the session's own events change it.
          // (test/sessions.stdio.test.ts, "…whose child failed its first start takes no work…")
          this.#life.ready()
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
    return this.#life.stats()
  }

  /** Stops taking new work; resolves when nothing is in flight (account-lifecycle.ts). */
  drain(): Promise<void> {
    return this.#life.drain()
  }

  /** An operator's reset: cooldown and ejection cleared, out of `failed`, a fresh worker if the session needs one. */
  reset(): Promise<void> {
    return this.#life.reset()
  }

  resume(): void {
    this.#life.resume()
  }

  /** Stops the session, its child and the worker; requests still pending get AGYC_SHUTTING_DOWN. */
  stop(): Promise<void> {
    return this.#life.stop()
  }
}
