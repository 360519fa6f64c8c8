/**
 * The life of an account's worker, as the main thread runs it: attach a worker (at start, or at the first request of
 * a parked account), restart one that died after a backoff, park an idle one, retire one quietly, give a fresh one on
 * an operator's reset, drain, and stop. The thread and its ports are the WorkerLink's (worker-link.ts); lazy workers'
 * books are Parking's (parking.ts); what the account is and what it holds stay with its AccountHandle, which this
 * module changes only through the fields of `LifecycleHost`.
 */
import type { Logger } from 'pino'
import type { AccountConfig } from '../config/schema.ts'
import { OrchestratorError } from '../errors.ts'
import type { Outlier } from '../health/outlier.ts'
import type { HealthStats } from '../health/score.ts'
import { metrics } from '../metrics.ts'
import type { WorkerStats } from '../protocol/messages.ts'
import { Parking, startsParked, type LazyWorkers } from './parking.ts'
import { WorkerLink, killGroups } from './worker-link.ts'

export type AccountState = 'starting' | 'up' | 'down' | 'draining' | 'stopped'

/** child restart-style backoff for a worker that died: 100 ms × 1.5ⁿ with jitter, capped at 15 s (PM2's defaults) */
export const backoffMs = (attempt: number, random: () => number = Math.random): number =>
  Math.min(15_000, 100 * 1.5 ** attempt * (0.8 + random() * 0.4)) // jitter inside the cap: never above 15 s

/** What the lifecycle reads and sets of its account (the AccountHandle). */
export interface LifecycleHost {
  readonly id: string
  state: AccountState
  sessionUp: boolean
  sessionState: string
  lastHeartbeatAt: number
  lastError: string | undefined
  workerRestarts: number
  readonly health: HealthStats
  readonly outlier: Outlier
  readonly childPids: Set<number>
  /** requests handed to the worker and not answered yet */
  readonly pendingCount: number
  /** conversations whose CLI waits, parked, on the client's tool results (the tool bridge) */
  readonly parkedConversations: number
  /** requests ever handed to the account, for idle parking */
  readonly seq: number
  /** the worker's events, as they crossed */
  onMessage(raw: unknown): void
  /** every pending request gets `error` (the worker that held them is gone) */
  failAll(error: OrchestratorError): void
  /** a slot freed or the account came up: the dispatcher hands it queued work */
  released(): void
}

export class AccountLifecycle {
  readonly #host: LifecycleHost
  readonly #log: Logger
  readonly #link: WorkerLink
  /** lazy workers, when this account has them (`startsParked`) */
  readonly #parking: Parking | undefined
  #ready: PromiseWithResolvers<void> = Promise.withResolvers()
  #reattach: NodeJS.Timeout | undefined
  #stopping = false
  /**
   * An operator or a reload asked the account to drain: it takes no new work until resumed, even when a worker that
   * was starting (or restarting) becomes ready meanwhile. `state` says 'draining' whenever it would otherwise say 'up'.
   */
  #draining = false

  constructor(host: LifecycleHost, config: AccountConfig, heartbeatMs: number, log: Logger, lazy: LazyWorkers | undefined) {
    this.#host = host
    this.#log = log
    this.#parking = lazy && startsParked(lazy.enabled, config.session) ? new Parking(lazy.idleMs) : undefined
    this.#link = new WorkerLink(config, heartbeatMs, log, {
      message: host.onMessage,
      ended: (err) => this.#ended(err),
      holding: () => host.state === 'starting', // a lazily started or reset worker takes its first requests once ready
    })
  }

  get stopping(): boolean { return this.#stopping }
  get draining(): boolean { return this.#draining }
  /** lazy workers: no worker runs now */
  get parked(): boolean { return this.#parking?.parked === true }
  /** lazy workers: parked and not admitting (the process-wide wake bound), or no parking at all */
  get admits(): boolean { return this.#parking === undefined || this.#parking.admits() }
  /** lazy workers: a worker starting for a request */
  get waking(): boolean { return this.#parking?.waking === true }

  /** Starts the worker; resolves once its session is ready (or the first start failed). With lazy workers: at once. */
  start(): Promise<void> {
    if (this.#parking) {
      this.#park(this.#parking)
      return Promise.resolve()
    }
    this.#attach()
    return this.#ready.promise
  }

  /** A request is being handed over: a parked account starts its worker (the request waits in the outbox). */
  beforeSend(): void {
    if (this.#parking?.parked) this.#wake(this.#parking)
  }

  send(command: Parameters<WorkerLink['send']>[0]): void {
    this.#link.send(command)
  }

  /**
   * Lazy workers: the account takes work without a worker; its first request starts one (#wake). It looks up and
   * healthy meanwhile: nothing is known against it, and a parked account that looked unavailable would never be woken.
   */
  #park(parking: Parking): void {
    const host = this.#host
    host.state = this.#draining ? 'draining' : 'up'
    host.sessionUp = true
    host.sessionState = 'up'
    host.lastHeartbeatAt = Date.now()
    parking.park(host.lastHeartbeatAt)
    host.released()
  }

  /** Lazy workers: a request came for a parked account. Its commands wait in the outbox until the worker is ready. */
  #wake(parking: Parking): void {
    parking.wake()
    this.#host.state = 'starting'
    this.#log.debug('starting the account worker for a request')
    this.#attach()
  }

  /** Each heartbeat: lazy workers with idleMs stop a worker that has had no request for idleMs, and park. */
  heartbeat(now: number): void {
    const parking = this.#parking
    if (parking === undefined || parking.idleMs <= 0) return
    const host = this.#host
    // a conversation parked on tool calls is a live CLI the client comes back to: the worker is not idle
    if (!parking.idle(now, host.seq, host.pendingCount + host.parkedConversations)) return
    if (host.state !== 'up' || !host.sessionUp || this.#stopping || !this.#link.attached) return
    this.#log.debug({ idleMs: parking.idleMs }, 'stopping an idle account worker')
    this.#retireWorker()
    this.#park(parking)
  }

  /** The worker's session is ready: it takes work (unless a stop or drain came meanwhile). */
  ready(): void {
    this.#ready.resolve()
    this.#parking?.woke()
    if (this.#stopping) return // its stop is under way: it must not take work now
    const host = this.#host
    host.state = this.#draining ? 'draining' : 'up'
    host.lastHeartbeatAt = Date.now()
    this.#log.debug('account ready')
    this.#link.flush() // what a lazily started worker was started for
    host.released()
  }

  /**
   * Stops the current worker quietly, for a reason of ours (idle, an operator's reset): its last events (its session
   * going down, its children reaped) are not news about the account, and nothing is counted against it. Whatever it
   * still holds must have been answered already. A next worker may be attached at once: piscina runs its attach task
   * once this one has ended.
   */
  #retireWorker(): void {
    this.#link.retire([...this.#host.childPids])
    this.#host.childPids.clear()
  }

  #attach(): void {
    // a new worker, a new session: its own events say otherwise from here on
    this.#host.sessionUp = true
    this.#host.sessionState = 'up'
    this.#link.attach()
  }

  /** The attach task ended: the worker stopped on request, or died. Either way its requests get a definite answer. */
  #ended(err: unknown): void {
    const host = this.#host
    this.#parking?.woke()
    this.killChildren()
    const message = err instanceof Error ? err.message : String(err ?? 'stopped')
    host.failAll(new OrchestratorError('AGYC_WORKER_DIED', `account ${host.id}: worker ended (${message})`))
    if (this.#stopping) {
      host.state = 'stopped'
      this.#ready.resolve() // a drain or start() waiting for this worker is not kept waiting
      return
    }
    host.state = 'down'
    host.lastError = message
    host.health.recordFailure()
    if (host.outlier.recordFailure()) metrics.ejection(host.id)
    const delay = backoffMs(host.workerRestarts++)
    this.#log.error({ err, restartInMs: Math.round(delay) }, 'account worker died')
    this.#ready.resolve() // start() callers are not kept waiting on a worker that will not come up soon
    this.#reattach = setTimeout(() => {
      this.#reattach = undefined
      if (!this.#stopping) this.#attach()
    }, delay)
  }

  /** SIGKILL every process group the worker reported: a child outlives the worker thread that spawned it. */
  killChildren(): void {
    killGroups(this.#host.childPids)
    this.#host.childPids.clear()
  }

  /** The worker missed its heartbeats (a hung event loop): end the thread; piscina starts a replacement. */
  terminate(reason: string): void {
    if (this.parked) return
    this.#log.error({ reason }, 'terminating account worker')
    this.#host.lastError = reason
    this.#link.terminate()
  }

  stats(): Promise<WorkerStats> {
    const control = this.#link.control
    if (!control) return Promise.reject(new OrchestratorError('AGYC_WORKER_DIED', `account ${this.#host.id} has no worker`))
    return control.stats()
  }

  /**
   * Stops taking new work and resolves when nothing is in flight. A worker still starting is let finish its start
   * first: stopped half-way, its 'ready' could race the stop, and a stop is cleaner on a session that is up.
   */
  async drain(): Promise<void> {
    const host = this.#host
    this.#draining = true
    if (host.state === 'up') host.state = 'draining'
    if (host.state === 'starting' && this.#link.attached) await this.#ready.promise
    while (host.pendingCount > 0) await new Promise((r) => setTimeout(r, 20))
  }

  resume(): void {
    this.#draining = false
    if (this.#host.state === 'draining') {
      this.#host.state = 'up'
      this.#host.released()
    }
  }

  /**
   * An operator's reset: cooldown and ejection cleared, and out of `failed`. A session that can restart its child does
   * so (a crash loop's supervisor); one that was decided for good when it was built (a CLI not installed or not logged
   * in: `agyc accounts login`, then reset) gets a fresh worker, which builds it anew; a worker waiting out its restart
   * backoff starts now.
   */
  async reset(): Promise<void> {
    const host = this.#host
    host.outlier.reset()
    if (this.#stopping || this.parked) {
      host.released()
      return
    }
    if (this.#reattach !== undefined) {
      clearTimeout(this.#reattach)
      this.#reattach = undefined
      this.#fresh('restarting the account worker now (reset)')
    } else if (this.#link.control !== undefined && !(await this.#link.control.reset()) && host.sessionState === 'failed' && this.#link.attached) {
      host.failAll(new OrchestratorError('AGYC_WORKER_DIED', `account ${host.id}: its worker was restarted by a reset`))
      this.#retireWorker()
      this.#fresh('restarting the account worker for a session that cannot restart itself (reset)')
    }
    host.released()
  }

  /** A new worker for the account; it takes work once it reports ready. */
  #fresh(why: string): void {
    this.#log.info(why)
    this.#host.state = 'starting'
    this.#ready = Promise.withResolvers<void>()
    this.#attach()
  }

  /** Stops the session, its child and the worker; requests still pending get AGYC_SHUTTING_DOWN. */
  async stop(): Promise<void> {
    const host = this.#host
    this.#stopping = true
    clearTimeout(this.#reattach)
    await this.#link.stop()
    host.failAll(new OrchestratorError('AGYC_SHUTTING_DOWN', `account ${host.id} stopped`))
    await this.#link.close()
    this.killChildren()
    host.state = 'stopped'
    this.#ready.resolve() // also for an account stopped before it ever started
  }
}
