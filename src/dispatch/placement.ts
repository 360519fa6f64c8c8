/**
 * Where a job goes, and what it is told when nothing can take it: the account its parked tool calls wait on, the
 * conversation's home (affinity), the strategy's pick (packed per event-loop turn, packing.ts), the least-queued
 * account when every one is busy, and the 529 (or 429) a job gets when every candidate is cooling, ejected, out of
 * budget, drained or stopped. The dispatcher holds the queue and assigns; this only chooses.
 */
import { OrchestratorError, type Code } from '../errors.ts'
import type { Strategy } from '../strategies/types.ts'
import type { AccountHandle } from './account-handle.ts'
import type { AccountTable } from './account-table.ts'
import type { AffinityTable } from './affinity.ts'
import type { Job } from './job.ts'
import { Packer } from './packing.ts'

export class Placer {
  readonly #affinity: AffinityTable
  readonly #table: AccountTable
  readonly #packer: Packer<AccountHandle>

  constructor(affinity: AffinityTable, table: AccountTable, strategies: Iterable<Strategy>) {
    this.#affinity = affinity
    this.#table = table
    this.#packer = new Packer(strategies)
  }

  /** requests placed by packing, not asked of their strategy (packing.ts) */
  get packed(): number { return this.#packer.followed }

  /** The account to hand the job to now, in order of preference; undefined: none can take it, it waits. */
  choose(job: Job, accountQueueSize: number): AccountHandle | undefined {
    // a continuation of parked tool calls: the slot its conversation held is its own
    const holder = job.continuesOn
    if (holder !== undefined && holder.routable && job.candidates.includes(holder)) return holder
    const affinity = job.affinity
    const home = affinity?.follow ? homeOf(affinity.key, job, this.#affinity, this.#table, accountQueueSize) : undefined
    const account = home ?? this.#packer.pick(job.strategy, job.candidates) ?? leastQueued(job.candidates, accountQueueSize)
    if (account && affinity) this.#affinity.served(affinity.key, account.id, account === home, affinity.follow)
    return account
  }
}

/**
 * The conversation's home account while it can take the request: up, not cooling or ejected, with a free slot or
 * room in its worker queue (a short wait there costs less than a cold prompt cache elsewhere).
 */
export function homeOf(key: string, job: Job, affinity: AffinityTable, table: AccountTable, accountQueueSize: number): AccountHandle | undefined {
  const id = affinity.home(key)
  const home = id === undefined ? undefined : table.get(id)
  if (!home || !home.routable || home.assigned >= home.maxConcurrency + accountQueueSize) return undefined
  return job.candidates.includes(home) ? home : undefined
}

/** Every account is busy: the one with the shortest worker queue that still has room. */
export function leastQueued(candidates: readonly AccountHandle[], room: number): AccountHandle | undefined {
  let best: AccountHandle | undefined
  for (const a of candidates) {
    if (a.routable && a.assigned - a.maxConcurrency < room && (!best || a.assigned - a.maxConcurrency < best.assigned - best.maxConcurrency)) best = a
  }
  return best
}

/** Every candidate is cooling, ejected, drained or stopped: 529 with the soonest recovery as retry-after. */
export function noAccount(job: Job): OrchestratorError {
  const up = job.candidates.filter((a) => a.state === 'up' && a.sessionUp && a.outlier.admits())
  if (up.length > 0 && up.every((a) => a.quota && !a.quota.admits(a.assigned))) {
    const resetsAt = Math.min(...up.map((a) => a.quota!.resetsAt(a.assigned)))
    return new OrchestratorError('AGYC_QUOTA_EXHAUSTED', `every account that serves "${job.model}" has used its budget`,
      { retryAfterS: (resetsAt - Date.now()) / 1000 })
  }
  let soonest = Number.POSITIVE_INFINITY
  for (const a of job.candidates) {
    const at = a.outlier.recoversAt()
    if (a.state === 'up' && at > 0 && at < soonest) soonest = at
  }
  const retryAfterS = Number.isFinite(soonest) ? (soonest - Date.now()) / 1000 : undefined
  const why = job.candidates.slice(0, 5).map((a) => `${a.id}: ${a.unavailableReason()}`).join('; ')
  return new OrchestratorError('AGYC_NO_ACCOUNT', `no account can serve "${job.model}" now (${why})`, { retryAfterS })
}

/** Failures another account may well not have: worth one more attempt elsewhere. */
const RETRYABLE = new Set<Code>([
  'AGYC_UPSTREAM_FAILED', 'AGYC_UPSTREAM_RATE_LIMITED', 'AGYC_UPSTREAM_OVERLOADED', 'AGYC_UPSTREAM_AUTH',
  'AGYC_WORKER_DIED', 'AGYC_INTERNAL',
])

/**
 * A failed job may move to another account: the failure is one another account may not have, no answer byte reached
 * the client, attempts are left, and another candidate can take it (or will, soon). The retry budget decides last.
 */
export function failoverWorthy(job: Job, error: OrchestratorError, maxAttempts: number): boolean {
  if (!RETRYABLE.has(error.code) || job.sink.committed || job.attempts >= maxAttempts) return false
  const account = job.account
  return job.candidates.some((a) => a !== account && (a.routable || a.recovering))
}
