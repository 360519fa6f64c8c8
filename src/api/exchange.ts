/**
 * One HTTP request/response pair as the dispatcher sees it: the job's sink. It writes straight to node's response
 * (one write per worker message; SSE through Hono's web streams costs ~40 %, docs/performance.md, "Why the data path is not a piscina task per request"), holds a
 * stream's status line back until the session produced its first bytes, settles exactly once, and logs one line.
 */
import type { ServerResponse } from 'node:http'
import type { OrchestratorError } from '../errors.ts'
import type { AccountHandle } from '../dispatch/account-handle.ts'
import type { Dispatcher } from '../dispatch/dispatcher.ts'
import type { Job, JobSink } from '../dispatch/job.ts'
import { PING, SSE_HEADERS } from '../formats/anthropic-sse.ts'
import { requestSettled } from '../metrics.ts'
import type { AccessFields } from './access-line.ts'
import { anthropicErrors, answerHeaders, errorAnswer, type ErrorShape } from './answer.ts'

/** how often the worker is told how much of a stream the client took: half its credit (workers/run.ts CREDIT) */
const ACK_EVERY = 256 * 1024

/** The exchanges not settled yet, as an intrusive list (O(1) in and out, nothing allocated): what a hard stop ends. */
let openHead: Exchange | undefined

/**
 * Ends every open exchange now with `error`: a 503 if its headers have not left, else an SSE `error` event and the end
 * of the stream. For a hard stop (a second SIGTERM), where nothing waits for the accounts.
 */
export function endOpenExchanges(error: OrchestratorError): void {
  while (openHead) openHead.fail(error, undefined)
}

export class Exchange implements JobSink {
  readonly res: ServerResponse
  readonly requestId: string
  readonly stream: boolean
  readonly #accessLine: (fields: AccessFields) => void
  readonly #dispatcher: Dispatcher
  readonly #errors: ErrorShape
  readonly #writeStallMs: number
  /** the client's socket is not draining: the worker holds this request's output; cut when it lasts #writeStallMs */
  #stallTimer: NodeJS.Timeout | undefined
  /** characters of the stream the socket took, and the last count the worker was told (its credit: workers/run.ts) */
  #taken = 0
  #acked = 0
  /** the job, once the dispatcher took it (accepted) */
  job: Job | undefined
  #settled = false
  #committed = false
  #pinger: NodeJS.Timeout | undefined
  /** when the first byte of the answer was written (Date.now()); 0 before */
  #firstByteAt = 0
  #prev: Exchange | undefined
  #next: Exchange | undefined

  constructor(res: ServerResponse, requestId: string, stream: boolean, dispatcher: Dispatcher, accessLine: (fields: AccessFields) => void,
    writeStallMs: number, errors: ErrorShape = anthropicErrors) {
    this.res = res
    this.#writeStallMs = writeStallMs
    this.requestId = requestId
    this.stream = stream
    this.#dispatcher = dispatcher
    this.#accessLine = accessLine
    this.#errors = errors
  }

  /**
   * The dispatcher took the job: from now on this exchange is open. Not in the constructor: a request refused at
   * admission (529, 503, 404 strict model) is answered by its door, and must leave no timer behind (its pinger would
   * write to an ended response), no entry in the open list and no close listener.
   */
  accepted(job: Job): void {
    this.job = job
    this.res.once('close', this.onClose)
    if (this.#settled) return
    // A stream's status line waits for the session's first bytes, so that an early failure can still move to another
    // account; after a short hold the client gets headers and pings (which commit nothing) until the answer starts.
    if (this.stream) this.#pinger = setTimeout(this.#ping, this.#dispatcher.config.streamHoldMs)
    this.#next = openHead
    if (openHead) openHead.#prev = this
    openHead = this
  }

  /** settled: out of the open list */
  #unlink(): void {
    if (this.#prev) this.#prev.#next = this.#next
    else if (openHead === this) openHead = this.#next
    if (this.#next) this.#next.#prev = this.#prev
    this.#prev = this.#next = undefined
  }

  get committed(): boolean {
    return this.#committed
  }

  #ping = (): void => {
    if (this.#settled || this.#committed) return
    if (!this.res.headersSent) this.#head(undefined)
    this.res.write(PING)
    this.#pinger = setTimeout(this.#ping, this.#dispatcher.config.pingIntervalMs)
  }

  /** the client went away before its answer: free the queue place or the account slot at once */
  onClose = (): void => {
    clearTimeout(this.#stallTimer)
    if (this.#settled || !this.job) return
    this.#settled = true
    this.#unlink()
    clearTimeout(this.#pinger)
    this.#dispatcher.cancel(this.job)
    this.#logLine(499, this.job.account, 'AGYC_CANCELLED')
  }

  chunk(text: string): void {
    if (this.#settled) return
    const res = this.res
    if (!this.#committed) {
      this.#committed = true
      clearTimeout(this.#pinger)
      if (!res.headersSent) this.#head(this.job?.account)
    }
    this.#taken += text.length // in node's buffer: told to the worker now, or once it drains
    if (!res.write(text)) {
      if (this.#stallTimer === undefined) this.#stalled()
    } else if (this.#taken - this.#acked >= ACK_EVERY) this.#ack()
  }

  /** tells the worker how much the client took, renewing its credit (one message per ACK_EVERY characters) */
  #ack(): void {
    const job = this.job
    if (!job || this.#settled) return
    this.#acked = this.#taken
    job.account?.ack(job, this.#taken)
  }

  /**
   * The client stopped reading (its socket buffer is full): no acknowledgement goes to the worker, which holds what
   * comes next once its credit is spent and then stops reading its session. A client that stays stalled is cut.
   */
  #stalled(): void {
    this.#stallTimer = setTimeout(this.#cut, this.#writeStallMs)
    this.res.once('drain', this.#drained)
  }

  #drained = (): void => {
    clearTimeout(this.#stallTimer)
    this.#stallTimer = undefined
    this.#ack()
  }

  /** Stalled past the limit: the request is cancelled in its worker (its slot freed) and the connection cut. */
  #cut = (): void => {
    this.#stallTimer = undefined
    this.res.off('drain', this.#drained)
    if (!this.#settled && this.job) {
      this.#settled = true
      this.#unlink()
      clearTimeout(this.#pinger)
      this.#dispatcher.cancel(this.job)
      this.#logLine(499, this.job.account, 'AGYC_WRITE_STALLED')
    }
    this.res.destroy() // an answer already complete but never read is dropped too
  }

  /** The answer is written whole; one the client does not read is dropped after the same stall limit. */
  #ended(): void {
    if (this.res.writableNeedDrain && this.#stallTimer === undefined) this.#stalled()
  }

  done(body: string | undefined, account: AccountHandle): void {
    if (this.#settled) return
    this.#settled = true
    this.#unlink()
    clearTimeout(this.#pinger)
    const res = this.res
    if (this.stream) {
      if (!res.headersSent) this.#head(account)
      res.end()
      this.#ended()
    } else {
      res.writeHead(200, answerHeaders({ 'content-type': 'application/json', 'content-length': Buffer.byteLength(body ?? '') },
        this.requestId, account.id, this.job?.attempts))
      res.end(body)
      this.#ended()
    }
    this.#logLine(200, account)
  }

  fail(error: OrchestratorError, account: AccountHandle | undefined): void {
    if (this.#settled) return
    this.#settled = true
    this.#unlink()
    clearTimeout(this.#pinger)
    const res = this.res
    if (res.headersSent) {
      // bytes already reached the client: an error event in the stream's shape and a clean end (Claude Code retries)
      res.end(this.#errors.streamEvent(error))
      this.#logLine(200, account, error.code)
      return
    }
    const answer = errorAnswer(error, this.requestId, this.#errors, { account: account?.id, attempts: this.job?.attempts })
    res.writeHead(answer.status, answer.headers)
    res.end(answer.body)
    this.#logLine(answer.status, account, error.code)
  }

  #head(account: AccountHandle | undefined): void {
    this.#firstByteAt = Date.now()
    this.res.writeHead(200, answerHeaders(SSE_HEADERS, this.requestId, account?.id, this.job?.attempts))
  }

  /** the one place a request settles: its log line and its metrics */
  #logLine(status: number, account: AccountHandle | undefined, code?: string): void {
    const job = this.job
    if (!job) return
    const now = Date.now()
    const durationMs = now - job.receivedAt
    // a non-streamed answer's first byte is its whole body
    const firstByteAt = this.#firstByteAt || (status === 200 && code === undefined ? now : 0)
    requestSettled(account?.id, status, job.strategy.name, code, job.assignedAt === 0 ? undefined : job.queueWaitMs,
      firstByteAt === 0 ? undefined : firstByteAt - job.receivedAt, durationMs)
    this.#accessLine({
      reqId: this.requestId, account: account?.id, strategy: job.strategy.name, model: job.model, stream: this.stream,
      queueMs: job.queueWaitMs, durationMs, attempts: job.attempts, status, code, continues: job.continues?.[0],
    })
  }
}
