/**
 * One running request in an account's worker: the session's view of it (its fields, its parsed body, its abort
 * signal), and its output: the answer framed as the client's stream, and the flow control toward a client that stops
 * reading. Flow control is by credit: a stream's bytes go out at most CREDIT beyond what the main thread acknowledged
 * the client's socket took (`ack`); the rest is held here, up to HOLD_LIMIT, past which `writable` is false and
 * `drained()` waits, so a session reading a stream (a child's stdout, an upstream's body) stops reading and its
 * producer waits too. An answer smaller than CREDIT never waits for an acknowledgement.
 */
import { randomBytes } from 'node:crypto'
import { OrchestratorError } from '../src/errors.ts'
import type { FromWorker, RunCommand } from '../src/protocol/messages.ts'
import { bodyText, type RunRequest } from '../src/protocol/run-request.ts'
import { estimateInputTokens, type MessagesRequest } from '../src/protocol/anthropic.ts'
import { framerFor, type Framer } from './framers.ts'
import type { Completion, SessionOutput, SessionRequest } from './sessions/types.ts'

/** a stream's characters in flight to the main thread and the client's socket, unacknowledged (docs/security.md, "Bounds") */
export const CREDIT = 512 * 1024
/** characters held here beyond the credit before the session is asked to stop reading */
export const HOLD_LIMIT = 256 * 1024

export type Chunk = Extract<FromWorker, { kind: 'chunk' }>

/** What a Run asks of its host: to send its stream bytes to the main thread, batched per turn. */
export interface RunHost {
  append(run: Run, text: string): void
}

// message ids: a random prefix per worker and a counter, like the request ids (randomBytes per request was 15 % of
// the worker's time in the benchmark's profile)
const idPrefix = `msg_${randomBytes(9).toString('base64url')}`
let idCounter = 0
const nextMessageId = (): string => `${idPrefix}${(++idCounter).toString(36).padStart(8, '0')}`

/** The request's own fields (run-request.ts), copied onto the Run from its command. */
export interface Run extends RunRequest {}

/** One running request: its abort switch and its stream's framing state. It is the session's output, too. */
export class Run implements SessionOutput, SessionRequest {
  readonly id: number
  readonly controller = new AbortController()
  readonly host: RunHost
  readonly messageId = nextMessageId()
  /** the session streams the upstream's own SSE (the http kind): the framer only translates it, if at all */
  passthrough = false
  /** the chunk event of this turn, still in the outbox and open for appending */
  pending: Chunk | undefined
  pendingGeneration = -1
  /** flow control: characters of the stream sent to the main thread, and those it acknowledged the client took */
  sent = 0
  acked = 0
  /** output beyond the credit, waiting for an acknowledgement */
  held = ''
  /** the request's `done`, when it completed with output still held: sent after it */
  doneWhileHeld: FromWorker | undefined
  #drainWaiters: (() => void)[] | undefined
  #request: MessagesRequest | undefined
  #framer: Framer | undefined

  constructor(host: RunHost, command: RunCommand) {
    // every field of the request, whatever run-request.ts declares: the session reads them off the Run
    Object.assign(this, command)
    this.host = host
    this.id = command.id
  }

  get signal(): AbortSignal { return this.controller.signal }

  /** the answer's writer in the client's format, made on first use */
  get framer(): Framer {
    return this.#framer ??= framerFor(this, this.format, this.includeUsage === true)
  }

  inputTokens(): number {
    return estimateInputTokens(this.request)
  }

  /**
   * The body parsed, on first use: a session that forwards the client's bytes (the http kind) never needs it. The main
   * thread parsed and checked the same text, so this throws only on a bug; the session's run rejects with it.
   */
  get request(): MessagesRequest {
    if (this.#request === undefined) {
      try {
        this.#request = JSON.parse(bodyText(this.body)) as MessagesRequest
      } catch {
        throw new OrchestratorError('AGYC_INTERNAL', 'request body could not be parsed in the worker')
      }
    }
    return this.#request
  }

  text(delta: string): boolean {
    if (!this.stream || this.signal.aborted || delta === '') return true
    this.#out(this.framer.text(delta))
    return this.writable
  }

  raw(sse: string): boolean {
    if (!this.stream || this.signal.aborted || sse === '') return true
    this.passthrough = true
    this.#out(this.framer.raw(sse))
    return this.writable
  }

  #out(text: string): void {
    if (this.held !== '' || this.sent - this.acked >= CREDIT) {
      this.held += text
      return
    }
    this.sent += text.length
    this.host.append(this, text)
  }

  /** output is held for an acknowledgement */
  get holding(): boolean {
    return this.held !== ''
  }

  /** false while the client is not reading and this request's held output is at HOLD_LIMIT */
  get writable(): boolean {
    return this.held.length < HOLD_LIMIT
  }

  /** Resolves once the request may produce more (at once when writable); a cancelled request resolves too. */
  drained(): Promise<void> {
    if (this.writable || this.signal.aborted) return Promise.resolve()
    return new Promise((resolve) => (this.#drainWaiters ??= []).push(resolve))
  }

  /**
   * The main thread says the client's socket took `taken` characters of the stream: held output goes out within the
   * new credit, and a session waiting to produce goes on. Returns the `done` that waited behind the held output, once
   * nothing is held any more, for the host to send (and to free the slot).
   */
  ack(taken: number): FromWorker | undefined {
    if (taken > this.acked) this.acked = taken
    if (this.held !== '') {
      const room = CREDIT - (this.sent - this.acked)
      if (room <= 0) return undefined
      const out = this.held.length <= room ? this.held : this.held.slice(0, room)
      this.held = this.held.slice(out.length)
      this.sent += out.length
      this.host.append(this, out)
    }
    if (this.writable) this.#wake()
    if (this.held !== '') return undefined
    const done = this.doneWhileHeld
    this.doneWhileHeld = undefined
    return done
  }

  /** cancelled: whoever waits for a drain goes on (and sees the abort) */
  #wake(): void {
    const waiters = this.#drainWaiters
    this.#drainWaiters = undefined
    if (waiters) for (const resolve of waiters) resolve()
  }

  abort(): void {
    this.controller.abort()
    this.held = ''
    this.#wake()
  }

  /** the rest of the stream, or the whole answer (returned: it travels with `done`) */
  finish(completion: Completion, accountId: string): string | undefined {
    if (!this.stream) return this.framer.whole(completion, accountId)
    const tail = this.framer.tail(completion, this.passthrough)
    if (tail !== '') this.#out(tail)
    return undefined
  }

}

