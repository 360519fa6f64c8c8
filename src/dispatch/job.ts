/**
 * One admitted request on its way through the dispatcher. The front door supplies the sink (it owns the HTTP
 * response); the dispatcher and the account handle only move the job and call the sink exactly once to settle it.
 */
import type { OrchestratorError } from '../errors.ts'
import type { RunRequest } from '../protocol/run-request.ts'
import type { Strategy } from '../strategies/types.ts'
import type { AccountHandle } from './account-handle.ts'
import type { AffinityKey } from './affinity.ts'

export interface JobSink {
  /** session bytes reached the client: from now on the answer cannot move to another account */
  readonly committed: boolean
  /** the dispatcher took the job (admission did not throw): from now on exactly one of done and fail ends it */
  accepted(job: Job): void
  /** pre-framed stream bytes (streamed requests only) */
  chunk(text: string): void
  /** the answer is complete; `body` is the whole answer of a non-streamed request */
  done(body: string | undefined, account: AccountHandle): void
  fail(error: OrchestratorError, account: AccountHandle | undefined): void
}

export type JobState = 'new' | 'queued' | 'assigned' | 'settled'

export class Job {
  /** what the account's worker runs (its `model` is the client's: each account maps it, AccountHandle.modelFor) */
  readonly request: RunRequest
  readonly strategy: Strategy
  /** set when the request is sticky: its conversation's key in the affinity table */
  readonly affinity: AffinityKey | undefined
  /** the tool bridge: the tool_use ids this request continues, and the account whose CLI waits on them */
  readonly continues: readonly string[] | undefined
  readonly continuesOn: AccountHandle | undefined
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

  constructor(request: RunRequest, route: {
    strategy: Strategy; affinity: AffinityKey | undefined; candidates: readonly AccountHandle[]
    continues?: readonly string[] | undefined; continuesOn?: AccountHandle | undefined
  }, sink: JobSink, receivedAt: number) {
    this.request = request
    this.strategy = route.strategy
    this.affinity = route.affinity
    this.continuesOn = route.continuesOn
    this.continues = route.continuesOn ? route.continues : undefined
    this.candidates = route.candidates
    this.sink = sink
    this.receivedAt = receivedAt
  }

  get model(): string { return this.request.model }

  get queueWaitMs(): number {
    return this.assignedAt === 0 ? 0 : this.assignedAt - this.receivedAt
  }
}
