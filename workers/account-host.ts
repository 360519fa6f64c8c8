/**
 * The worker half of an account: owns its session and its concurrency limit. Requests beyond the limit wait here, in
 * the account queue, and start the moment a slot frees, without a round trip to the main thread. Everything bound for
 * the main thread in one event-loop turn leaves as one message (architecture-findings §3: the cost of a hop is per
 * message and per wake-up, so a stream's deltas are coalesced per turn, per request).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { randomBytes } from 'node:crypto'
import type { MessagePort } from 'node:worker_threads'
import { threadId } from 'node:worker_threads'
import { OrchestratorError, type Code } from '../src/errors.ts'
// no zod in a worker (~7 MB an isolate): the messages' types only, and the hand-checked flat forms
import type { FromWorker, RunCommand, WorkerStats } from '../src/protocol/messages.ts'
import type { RunRequest } from '../src/protocol/run-request.ts'
import { assertNever } from '../src/protocol/assert-never.ts'
import { decodeToWorkerBatch, encodeFromWorker } from '../src/protocol/tuples.ts'
import { estimateInputTokens, type MessagesRequest } from '../src/protocol/anthropic.ts'
import * as sse from '../src/formats/anthropic-sse.ts'
import type { Completion, Session, SessionOutput, SessionRequest } from './sessions/types.ts'

type Chunk = Extract<FromWorker, { kind: 'chunk' }>

// message ids: a random prefix per worker and a counter, like the request ids (randomBytes per request was 15 % of
// the worker's time in the benchmark's profile)
const idPrefix = `msg_${randomBytes(9).toString('base64url')}`
let idCounter = 0
const nextMessageId = (): string => `${idPrefix}${(++idCounter).toString(36).padStart(8, '0')}`

/** The request's own fields (run-request.ts), copied onto the Run from its command. */
interface Run extends RunRequest {}

/** One running request: its abort switch and its stream's framing state. It is the session's output, too. */
class Run implements SessionOutput, SessionRequest {
  readonly id: number
  readonly controller = new AbortController()
  readonly host: AccountHost
  readonly messageId = nextMessageId()
  /** message_start and the text block have been framed */
  opened = false
  /** the session streams the upstream's own SSE: the host frames nothing for this request */
  passthrough = false
  /** the chunk event of this turn, still in the outbox and open for appending */
  pending: Chunk | undefined
  pendingGeneration = -1
  #request: MessagesRequest | undefined

  constructor(host: AccountHost, command: RunCommand) {
    // every field of the request, whatever run-request.ts declares: the session reads them off the Run
    Object.assign(this, command)
    this.host = host
    this.id = command.id
  }

  get signal(): AbortSignal { return this.controller.signal }

  /**
   * The body parsed, on first use: a session that forwards the client's bytes (the http kind) never needs it. The main
   * thread parsed and checked the same text, so this throws only on a bug; the session's run rejects with it.
   */
  get request(): MessagesRequest {
    if (this.#request === undefined) {
      try {
        this.#request = JSON.parse(this.body) as MessagesRequest
      } catch {
        throw new OrchestratorError('AGYC_INTERNAL', 'request body could not be parsed in the worker')
      }
    }
    return this.#request
  }

  text(delta: string): void {
    if (!this.stream || this.signal.aborted || delta === '') return
    this.host.append(this, this.#open() + sse.textDelta(0, delta))
  }

  raw(sse: string): void {
    if (!this.stream || this.signal.aborted || sse === '') return
    this.passthrough = true
    this.host.append(this, sse)
  }

  #open(): string {
    if (this.opened) return ''
    this.opened = true
    return sse.messageStart(this.messageId, this.model, estimateInputTokens(this.request)) + sse.textBlockStart(0) + sse.PING
  }

  /** the rest of the stream, or the whole message as JSON */
  finish(completion: Completion, accountId: string): string | undefined {
    const model = completion.model ?? this.model
    if (!this.stream) {
      return JSON.stringify({
        id: this.messageId, type: 'message', role: 'assistant', model, content: completion.content,
        stop_reason: completion.stopReason, stop_sequence: completion.stopSequence ?? null, usage: completion.usage,
        metadata: { account_id: accountId },
      })
    }
    if (this.passthrough) return undefined // the upstream's own events, message_stop included, already went out
    let tail = ''
    if (!this.opened) {
      // nothing streamed yet (a session that answers in one piece): send the text as one delta
      tail = this.#open()
      let text = ''
      for (const block of completion.content as { type?: string; text?: string }[]) if (block.type === 'text') text += block.text ?? ''
      if (text) tail += sse.textDelta(0, text)
    }
    tail += sse.blockStop(0) + sse.messageDelta(completion.stopReason, completion.stopSequence ?? null, completion.usage) + sse.MESSAGE_STOP
    this.host.append(this, tail)
    return undefined
  }
}

export class AccountHost {
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
    return { threadId, running: this.#running.size, queued: this.#queue.length, ...this.#stats }
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
        default:
          assertNever(command)
      }
    }
  }

  #start(command: RunCommand): void {
    const run = new Run(this, command)
    this.#running.set(run.id, run)
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
    this.post({ kind: 'done', id: run.id, body, usage: completion.usage, model: completion.model ?? run.model })
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
      run.controller.abort()
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
