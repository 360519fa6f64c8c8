/**
 * The worker half of an account: owns its session and its concurrency limit. Requests beyond the limit wait here, in
 * the account queue, and start the moment a slot frees, without a round trip to the main thread. Everything bound for
 * the main thread in one event-loop turn leaves as one message (docs/performance.md, "What the thread hop costs": the cost of a hop is per
 * message and per wake-up, so a stream's deltas are coalesced per turn, per request).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { getHeapSpaceStatistics } from 'node:v8'
import type { MessagePort } from 'node:worker_threads'
import { resourceLimits, threadId } from 'node:worker_threads'
import { OrchestratorError, type Code } from '../src/errors.ts'
// no zod in a worker (~7 MB an isolate): the messages' types only, and the hand-checked flat forms
import type { FromWorker, RunCommand, WorkerStats } from '../src/protocol/messages.ts'
import { assertNever } from '../src/protocol/assert-never.ts'
import { decodeToWorkerBatch, encodeFromWorker } from '../src/protocol/tuples.ts'
import { HeapRelease } from '../src/loader/heap-release.ts'
import type { Completion, Session } from './sessions/types.ts'
import { Run, type Chunk, type RunHost } from './run.ts'

export class AccountHost implements RunHost {
  readonly accountId: string
  readonly #port: MessagePort
  readonly #session: Session
  readonly #limit: number
  readonly #running = new Map<number, Run>()
  readonly #queue: RunCommand[] = []
  #outbox: FromWorker[] = []
  #flushScheduled = false
  #generation = 0
  #idleWaiters: (() => void)[] = []
  readonly #stats = { peakRunning: 0, served: 0, failed: 0, cancelled: 0 }
  readonly #loopDelay = monitorEventLoopDelay({ resolution: 20 })
  /** runs of large bodies: once they are done, the heap their parse grew is given back */
  readonly #heap = new HeapRelease()
  readonly #large = new Set<Run>()
  #heartbeat: NodeJS.Timeout | undefined

  constructor(accountId: string, port: MessagePort, session: Session, limit: number) {
    this.accountId = accountId
    this.#port = port
    this.#session = session
    this.#limit = limit
    port.on('message', this.#onMessage)
  }

  startHeartbeats(everyMs: number): void {
    this.#loopDelay.enable()
    const beat = (): void => {
      const child = this.#session.child
      this.post({
        kind: 'heartbeat', at: Date.now(), running: this.#running.size, queued: this.#queue.length,
        peakRunning: this.#stats.peakRunning, loopDelayMs: this.#loopDelay.max / 1e6,
        childPid: child?.pid, childAlive: child?.alive, restarts: child?.restarts ?? 0, lastError: child?.lastError,
      })
      this.#loopDelay.reset()
    }
    beat()
    this.#heartbeat = setInterval(beat, everyMs)
  }

  stopHeartbeats(): void {
    clearInterval(this.#heartbeat)
    this.#loopDelay.disable()
  }

  stats(): WorkerStats {
    const young = getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')
    return {
      threadId, running: this.#running.size, queued: this.#queue.length, ...this.#stats,
      youngGenerationMb: (young?.space_size ?? 0) / 2 ** 20, youngGenerationLimitMb: resourceLimits.maxYoungGenerationSizeMb ?? 0,
    }
  }

  idle(): Promise<void> {
    if (this.#running.size === 0 && this.#queue.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idleWaiters.push(resolve))
  }

  #onMessage = (raw: unknown): void => {
    for (const command of decodeToWorkerBatch(raw)) {
      switch (command.kind) {
        case 'run':
          if (this.#running.size < this.#limit) this.#start(command)
          else this.#queue.push(command)
          break
        case 'cancel':
          this.#cancel(command.id)
          break
        case 'ack': {
          const run = this.#running.get(command.id)
          const done = run?.ack(command.taken)
          if (run && done) {
            this.post(done)
            this.#release(run)
          }
          break
        }
        default:
          assertNever(command)
      }
    }
  }

  #start(command: RunCommand): void {
    const run = new Run(this, command)
    this.#running.set(run.id, run)
    if (this.#heap.began(command.body.length)) this.#large.add(run)
    if (this.#running.size > this.#stats.peakRunning) this.#stats.peakRunning = this.#running.size
    let result: Promise<Completion>
    try {
      result = this.#session.run(run, run)
    } catch (err) {
      result = Promise.reject(err) // a session that is not async and read `request` (see Run.request)
    }
    result.then(
      (completion) => this.#complete(run, completion),
      (err: unknown) => this.#failRun(run, err),
    )
  }

  #complete(run: Run, completion: Completion): void {
    if (this.#running.get(run.id) !== run) return // cancelled meanwhile: the main thread has forgotten it
    const body = run.finish(completion, this.accountId)
    this.#stats.served++
    const done: FromWorker = { kind: 'done', id: run.id, body, usage: completion.usage, model: completion.model ?? run.model }
    if (completion.parked !== undefined && completion.parked.length > 0) done.parked = [...completion.parked]
    if (run.holding) {
      // the client is not reading: the end waits behind what is held, and the request keeps its slot until then
      run.doneWhileHeld = done
      return
    }
    this.post(done)
    this.#release(run)
  }

  #failRun(run: Run, err: unknown): void {
    if (this.#running.get(run.id) !== run) return
    const error = err instanceof OrchestratorError ? err
      : new OrchestratorError('AGYC_UPSTREAM_FAILED', `session failed: ${err instanceof Error ? err.message : String(err)}`)
    this.#fail(run.id, error.code, error.message, error.retryAfterS)
    this.#release(run)
  }

  #fail(id: number, code: Code, message: string, retryAfterS?: number): void {
    this.#stats.failed++
    this.post(retryAfterS === undefined ? { kind: 'failed', id, code, message } : { kind: 'failed', id, code, message, retryAfterS })
  }

  #cancel(id: number): void {
    const run = this.#running.get(id)
    if (run) {
      this.#stats.cancelled++
      // an answer that ended on parked tool calls but was held for a stalled client: the main thread must still learn
      // that a CLI waits on them (it holds their slot until they end)
      const held = run.doneWhileHeld
      if (held?.kind === 'done' && held.parked !== undefined) this.post({ ...held, body: undefined })
      run.abort()
      this.#release(run) // the slot is free at once; the session stops its work on the signal
      return
    }
    const queued = this.#queue.findIndex((c) => c.id === id)
    if (queued >= 0) {
      this.#stats.cancelled++
      this.#queue.splice(queued, 1)
      this.#notifyIdle()
    }
  }

  #release(run: Run): void {
    this.#running.delete(run.id)
    if (this.#large.delete(run)) this.#heap.ended()
    const next = this.#queue.shift()
    if (next) this.#start(next)
    else this.#notifyIdle()
  }

  #notifyIdle(): void {
    if (this.#running.size > 0 || this.#queue.length > 0 || this.#idleWaiters.length === 0) return
    const waiters = this.#idleWaiters
    this.#idleWaiters = []
    for (const resolve of waiters) resolve()
  }

  /** Appends stream bytes to the request's chunk of this turn, or opens one. */
  append(run: Run, text: string): void {
    if (run.pending && run.pendingGeneration === this.#generation) {
      run.pending.text += text
      return
    }
    run.pending = { kind: 'chunk', id: run.id, text }
    run.pendingGeneration = this.#generation
    this.post(run.pending)
  }

  post(event: FromWorker): void {
    this.#outbox.push(event)
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      setImmediate(this.#flush)
    }
  }

  #flush = (): void => {
    this.#flushScheduled = false
    this.#generation++
    const batch = this.#outbox
    this.#outbox = []
    // encoded only now: a stream's chunk event stays open for appending until the turn ends
    this.#port.postMessage(batch.map(encodeFromWorker))
  }

  /** fails whatever is left (the worker is stopping) and stops the session */
  async close(): Promise<void> {
    this.stopHeartbeats()
    for (const run of this.#running.values()) run.controller.abort()
    for (const command of this.#queue.splice(0)) this.#fail(command.id, 'AGYC_SHUTTING_DOWN', 'the account is stopping')
    for (const run of [...this.#running.values()]) {
      this.#fail(run.id, 'AGYC_SHUTTING_DOWN', 'the account is stopping')
      this.#running.delete(run.id)
    }
    await this.#session.stop()
    if (this.#flushScheduled) this.#flush()
    this.#port.off('message', this.#onMessage)
  }
}
