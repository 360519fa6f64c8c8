/**
 * What a session kind implements. A session runs requests for one account inside that account's worker; the host
 * (`workers/account-host.ts`) owns the concurrency limit, the framing and the batching, so a session only turns a
 * request into text (or, for pass-through upstreams, into ready-made SSE events) and a completion.
 */
import type { AccountConfig } from '../../src/config/schema.ts'
import type { FromWorker, Usage } from '../../src/protocol/messages.ts'
import type { MessagesRequest } from '../../src/protocol/anthropic.ts'
import type { RunRequest } from '../../src/protocol/run-request.ts'

/** One request in a session: the request's fields (src/protocol/run-request.ts), and what the worker adds. */
export interface SessionRequest extends RunRequest {
  /** the per-account sequence number of the run */
  readonly id: number
  /** `body` parsed, on first use (the main thread checked it) */
  readonly request: MessagesRequest
  /** aborted when the client goes away or the deadline passes: stop the work and its child */
  readonly signal: AbortSignal
}

export interface SessionOutput {
  /**
   * One text delta of the answer, as soon as it exists. Returns false when the client is not reading and this
   * request's held output is full: a session reading a stream stops reading it until `drained()` resolves, so its
   * producer (a child, an upstream) waits too instead of the worker buffering without bound.
   */
  text(delta: string): boolean
  /**
   * Pass-through for an upstream that frames its own answer (the `http` kind): complete or partial Anthropic SSE
   * bytes, appended to the client's stream as they are. A request uses either `text` or `raw`, never both; once it
   * used `raw`, the host adds no framing of its own, not even at the end (the upstream's `message_stop` ends it).
   * Returns false as `text` does.
   */
  raw(sse: string): boolean
  /** false while the client is not reading and this request's held output is full */
  readonly writable: boolean
  /** resolves once the request may produce more (at once while writable; also when the request is cancelled) */
  drained(): Promise<void>
}

export interface Completion {
  /**
   * The answer's content blocks; text deltas already sent must add up to its text blocks. `tool_use` blocks
   * (`{type, id, name, input}`) come after the text, and the host frames them in a stream (the tool bridge).
   */
  readonly content: readonly object[]
  readonly stopReason: string
  readonly stopSequence?: string | null
  readonly usage: Usage
  /** the model that really answered, when the session knows it */
  readonly model?: string
  /**
   * The tool bridge: ids of this answer's `tool_use` blocks on which a live CLI now waits for the client's result.
   * The main thread routes a request carrying a `tool_result` for one of them back to this account (and holds the
   * account's slot meanwhile); the session emits `unparked` when such calls end without one (deadline, CLI gone).
   */
  readonly parked?: readonly string[]
}

export interface Session {
  /** starts long-lived upstreams (a stdio child, a local server); the account takes work once it resolves */
  start(): Promise<void>
  /** runs one request; rejects with an OrchestratorError (or anything, which becomes AGYC_UPSTREAM_FAILED) */
  run(req: SessionRequest, out: SessionOutput): Promise<Completion>
  /** stops children and releases resources; idempotent */
  stop(): Promise<void>
  /** leaves the `failed` state (too many restarts) and starts the child again */
  reset?(): void
  /** for heartbeats: the long-lived child, if the session has one */
  readonly child?: { pid: number | undefined; alive: boolean; restarts: number; lastError?: string }
}

export interface SessionContext {
  readonly account: AccountConfig
  /** events for the main thread (child pids, logs), batched with the rest */
  emit(event: FromWorker): void
}

export type SessionFactory = (context: SessionContext) => Session
