/**
 * One running request in an account's worker: the session's view of it (its fields, its parsed body, its abort
 * signal), and its output: the answer framed as the client's stream, and the flow control toward a client that stops
 * reading. When the main thread says `pause` (the client's socket is not draining), the output is held here up to
 * HOLD_LIMIT; past it `writable` is false and `drained()` waits, so a session reading a stream (a child's stdout, an
 * upstream's body) stops reading and its producer waits too. `resume` sends what was held.
 */
import { randomBytes } from 'node:crypto'
import { OrchestratorError } from '../src/errors.ts'
import type { FromWorker, RunCommand } from '../src/protocol/messages.ts'
import type { RunRequest } from '../src/protocol/run-request.ts'
import { estimateInputTokens, type MessagesRequest } from '../src/protocol/anthropic.ts'
import * as sse from '../src/formats/anthropic-sse.ts'
import type { Completion, SessionOutput, SessionRequest } from './sessions/types.ts'

/** output held for a paused request before its session is asked to stop reading (docs/security.md, "Bounds") */
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
  /** message_start and the text block have been framed */
  opened = false
  /** the session streams the upstream's own SSE: the host frames nothing for this request */
  passthrough = false
  /** the chunk event of this turn, still in the outbox and open for appending */
  pending: Chunk | undefined
  pendingGeneration = -1
  /** flow control: the client is not reading; `held` is this request's output since */
  paused = false
  held = ''
  /** the request's `done`, when it completed while paused: sent after what is held */
  doneWhilePaused: FromWorker | undefined
  #drainWaiters: (() => void)[] | undefined
  #request: MessagesRequest | undefined

  constructor(host: RunHost, command: RunCommand) {
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

  text(delta: string): boolean {
    if (!this.stream || this.signal.aborted || delta === '') return true
    this.#out(this.#open() + sse.textDelta(0, delta))
    return this.writable
  }

  raw(sse: string): boolean {
    if (!this.stream || this.signal.aborted || sse === '') return true
    this.passthrough = true
    this.#out(sse)
    return this.writable
  }

  #out(text: string): void {
    if (this.paused) this.held += text
    else this.host.append(this, text)
  }

  /** false while the client is not reading and this request's held output is at HOLD_LIMIT */
  get writable(): boolean {
    return !this.paused || this.held.length < HOLD_LIMIT
  }

  /** Resolves once the request may produce more (at once when writable); a cancelled request resolves too. */
  drained(): Promise<void> {
    if (this.writable || this.signal.aborted) return Promise.resolve()
    return new Promise((resolve) => (this.#drainWaiters ??= []).push(resolve))
  }

  pause(): void {
    this.paused = true
  }

  /**
   * The client reads again: what was held goes out and waiting sessions go on. Returns the `done` that came meanwhile,
   * for the host to send after it (and to free the slot).
   */
  resume(): FromWorker | undefined {
    this.paused = false
    const held = this.held
    this.held = ''
    if (held !== '') this.host.append(this, held)
    const done = this.doneWhilePaused
    this.doneWhilePaused = undefined
    this.#wake()
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
    this.#out(tail)
    return undefined
  }
}

