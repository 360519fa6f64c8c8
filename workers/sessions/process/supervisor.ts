/**
 * Keeps one long-lived child up: starts it, waits until it is ready, restarts it when it dies with exponential
 * backoff and jitter (100 ms × 1.5ⁿ, capped at 15 s, reset after 30 s up: PM2's defaults), and gives up after
 * more than `burst` starts in `windowMs` (systemd's StartLimitBurst): the account is then `failed` until `reset()`.
 * The stdio session and an http session's local server use it.
 */
import type { Child, Launcher } from './child.ts'
import type { SessionContext } from '../types.ts'

export type SupervisorState = 'starting' | 'up' | 'restarting' | 'failed' | 'stopped'

export interface RestartPolicy {
  initialDelayMs: number
  factor: number
  maxDelayMs: number
  resetAfterMs: number
  burst: number
  windowMs: number
}

export interface SupervisorHooks {
  /** resolves once the fresh child can serve; rejecting (or the child exiting) counts as a failed start */
  ready(child: Child): Promise<void>
  /** the child is gone: fail what it was doing */
  exited(reason: string): void
}

export class Supervisor {
  #state: SupervisorState = 'starting'
  #reportedUp = true
  /** the main thread was told `failed`: leaving it is news even while the session stays down */
  #reportedFailed = false
  child: Child | undefined
  restarts = 0
  lastError: string | undefined
  readonly #context: SessionContext
  readonly #launcher: Launcher
  readonly #args: readonly string[]
  readonly #policy: RestartPolicy
  readonly #hooks: SupervisorHooks
  readonly #what: string
  #attempt = 0
  #starts: number[] = []
  #upAt = 0
  #timer: NodeJS.Timeout | undefined
  /** why we are killing the child ourselves: its exit reports this rather than "killed by SIGTERM" */
  #killReason: string | undefined

  constructor(context: SessionContext, launcher: Launcher, args: readonly string[], policy: RestartPolicy, hooks: SupervisorHooks, what: string) {
    this.#context = context
    this.#launcher = launcher
    this.#args = args
    this.#policy = policy
    this.#hooks = hooks
    this.#what = what
  }

  get state(): SupervisorState { return this.#state }

  /**
   * Every change between serving and not serving is told to the main thread at once, so routing skips the account.
   * Compared with what the main thread believes, which is "up" for a fresh worker: a first start that fails is news.
   */
  #set(state: SupervisorState): void {
    this.#state = state
    if (state === 'starting') return // an attempt under way is not news; its outcome is
    const up = state === 'up'
    if (up !== this.#reportedUp || state === 'failed' || this.#reportedFailed) {
      this.#reportedUp = up
      this.#reportedFailed = state === 'failed'
      this.#context.emit({ kind: 'session', up, state, ...(this.lastError ? { reason: this.lastError } : {}) })
    }
  }

  /** for heartbeats */
  get info(): { pid: number | undefined; alive: boolean; restarts: number; lastError?: string } {
    const child = this.child
    return { pid: child?.pid, alive: !!child && !child.exited && this.state === 'up', restarts: this.restarts, ...(this.lastError ? { lastError: this.lastError } : {}) }
  }

  /** The first start; resolves when the child is ready or the attempt failed (a restart is then scheduled). */
  start(): Promise<void> {
    return this.#launch()
  }

  async #launch(): Promise<void> {
    if (this.state === 'stopped') return
    const now = Date.now()
    this.#starts = this.#starts.filter((t) => now - t < this.#policy.windowMs)
    if (this.#starts.length >= this.#policy.burst) {
      this.#set('failed')
      this.#log('error', `${this.#what} failed: more than ${this.#policy.burst} starts within ${this.#policy.windowMs} ms; the account stays failed until reset`)
      return
    }
    this.#starts.push(now)
    this.#set('starting')
    const child = this.#launcher.spawn(this.#args, this.#what)
    this.child = child
    void child.closed.then(({ code, signal }) => this.#exited(child, child.describeExit(code, signal)))
    try {
      await Promise.race([
        this.#hooks.ready(child),
        child.closed.then(({ code, signal }) => { throw new Error(child.describeExit(code, signal)) }),
      ])
      if (this.child !== child || this.state !== 'starting') return
      this.#set('up')
      this.#upAt = Date.now()
      this.#log('info', `${this.#what} is up`, { childPid: child.pid })
    } catch (err) {
      if (this.child !== child) return
      this.#killReason = `${this.#what} did not start: ${(err as Error).message}`
      void child.kill() // its exit schedules the restart
      await child.closed
    }
  }

  #exited(child: Child, reason: string): void {
    if (this.child !== child) return
    this.child = undefined
    this.lastError = this.#killReason ?? reason
    this.#killReason = undefined
    const ending = this.state === 'stopped' || this.state === 'failed'
    if (!ending) this.#set('restarting') // before failing the child's requests: the main thread learns the cause first
    this.#hooks.exited(this.lastError)
    if (ending) return
    if (this.#upAt && Date.now() - this.#upAt >= this.#policy.resetAfterMs) this.#attempt = 0
    this.#upAt = 0
    const delay = Math.min(this.#policy.maxDelayMs, this.#policy.initialDelayMs * this.#policy.factor ** this.#attempt++ * (0.8 + Math.random() * 0.4))
    this.restarts++
    this.#log('warn', `${this.#what} exited; restarting`, { reason: this.lastError, restartInMs: Math.round(delay), restarts: this.restarts })
    this.#timer = setTimeout(() => { this.#timer = undefined; void this.#launch() }, delay)
  }

  /** The child misbehaves (protocol violation, missed pings): kill it; its exit schedules the restart. */
  restart(reason: string): void {
    const child = this.child
    if (!child) return
    this.#killReason = reason
    this.#set('restarting')
    void child.kill()
  }

  /** Out of `failed`: start over with a clean history. Until the fresh child is up the account is `restarting`. */
  reset(): void {
    if (this.state !== 'failed') return
    this.#starts = []
    this.#attempt = 0
    this.lastError = undefined
    this.#set('restarting') // the main thread waits for it again (requests queue) instead of refusing at once
    void this.#launch()
  }

  async stop(): Promise<void> {
    this.#state = 'stopped'
    clearTimeout(this.#timer)
    await this.child?.kill()
  }

  #log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
    this.#context.emit({ kind: 'log', level, msg, fields: { ...fields, ...(level === 'error' ? { lastError: this.lastError } : {}) } })
  }
}
