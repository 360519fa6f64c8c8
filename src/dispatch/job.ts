/**
 * One accepted request on its way through the dispatcher. The API layer supplies the sink (it owns the HTTP
 * response); the dispatcher and the account handle only move the job and call the sink exactly once to settle it.
 */
import type { OrchestratorError } from '../errors.ts'
import type { Strategy } from '../strategies/types.ts'
import type { AccountHandle } from './account-handle.ts'
import type { AffinityKey } from './affinity.ts'

export interface JobSink {
  /** session bytes reached the client: from now on the answer cannot move to another account */
  readonly committed: boolean
  /** pre-framed SSE bytes (streamed requests only) */
  chunk(text: string): void
  /** the answer is complete; `body` is the JSON message of a non-streamed request */
  done(body: string | undefined, account: AccountHandle): void
  fail(error: OrchestratorError, account: AccountHandle | undefined): void
}

export type JobState = 'new' | 'queued' | 'assigned' | 'settled'

export class Job {
  readonly requestId: string
  readonly body: string
  readonly model: string
  readonly stream: boolean
  readonly maxTokens: number
  /** the client's `anthropic-beta` and `anthropic-version`, for upstreams that speak the Anthropic API */
  readonly anthropicBeta: string | undefined
  readonly anthropicVersion: string | undefined
  readonly strategy: Strategy
  /** set when the request is sticky: its conversation's key in the affinity table */
  readonly affinity: AffinityKey | undefined
  /** the accounts that may serve this model, in config order (minus those a failover already tried) */
  candidates: readonly AccountHandle[]
  readonly sink: JobSink
  readonly receivedAt: number
  state: JobState = 'new'
  account: AccountHandle | undefined
  /** per-account sequence number while assigned */
  seq = 0
  assignedAt = 0
  /** accounts this job was handed to, failovers included */
  attempts = 0
  /** accounts a failover took this job away from: never its candidates again, also after a reload re-routes it */
  tried: AccountHandle[] | undefined
  timer: NodeJS.Timeout | undefined
  // intrusive links of the global queue: O(1) removal when a waiting client goes away
  prev: Job | undefined
  next: Job | undefined

  constructor(init: {
    requestId: string; body: string; model: string; stream: boolean; maxTokens: number; strategy: Strategy;
    anthropicBeta?: string | undefined; anthropicVersion?: string | undefined; affinity?: AffinityKey | undefined;
    candidates: readonly AccountHandle[]; sink: JobSink; receivedAt: number
  }) {
    this.requestId = init.requestId
    this.body = init.body
    this.model = init.model
    this.stream = init.stream
    this.maxTokens = init.maxTokens
    this.affinity = init.affinity
    this.anthropicBeta = init.anthropicBeta
    this.anthropicVersion = init.anthropicVersion
    this.strategy = init.strategy
    this.candidates = init.candidates
    this.sink = init.sink
    this.receivedAt = init.receivedAt
  }

  get queueWaitMs(): number {
    return this.assignedAt === 0 ? 0 : this.assignedAt - this.receivedAt
  }
}
