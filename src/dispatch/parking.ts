/**
 * Lazy workers (`dispatcher.lazyWorkers`): which accounts start parked, without a worker, until their first request.
 * docs/performance.md, "Memory and start-up: what a worker costs, and lazy workers".
 */
import type { DispatcherConfig, SessionConfig } from '../config/schema.ts'
import { assertNever } from '../protocol/assert-never.ts'
import { START_RAMP } from './start-ramp.ts'

export type LazyWorkers = DispatcherConfig['lazyWorkers']

/**
 * Whether an account starts parked. `true` and `false` apply to every account; `"auto"` parks an account whose
 * session has no child process and starts the others with the orchestrator:
 * - without a child (`mock`, `http` without `start`), a live worker is the account's whole cost (~15 MB, ~60 ms of
 *   CPU to start) and starting it early proves nothing a first request would not;
 * - with one (`exec`, `stdio`, `http` with `start`, the agent CLIs), the child dominates the memory anyway, a command
 *   that cannot start is found at start-up rather than by the first client, and a long-lived child is warm.
 */
export function startsParked(enabled: LazyWorkers['enabled'], session: SessionConfig): boolean {
  if (enabled !== 'auto') return enabled
  switch (session.kind) {
    case 'mock':
      return true
    case 'http':
      return session.start === undefined // `start`: the account's own local server, a child like any other
    case 'exec':
    case 'stdio':
    case 'claude-code':
    case 'gemini-cli':
    case 'codex':
      return false
    default:
      return assertNever(session)
  }
}

/**
 * Parked accounts starting a worker for a request, in this process, bounded like the start-up ramp (start-ramp.ts):
 * a burst spread by round-robin over 100 parked accounts would start 100 at once. Process-wide: enough for one
 * orchestrator per process.
 */
const wakes = { starting: 0, limit: START_RAMP }

/**
 * What lazy workers add to one account: whether it has a worker now, whether it is starting one for a request (and so
 * counted in the bound), and when it last had work (for `idleMs`). AccountHandle owns the worker and the account's
 * state; an eager account has no Parking at all.
 */
export class Parking {
  /** stop a worker after this long without a request; 0: never */
  readonly idleMs: number
  #parked = false
  #waking = false
  /** the account's request sequence number when a heartbeat last looked, and when one last saw work */
  #idleSeq = 0
  #activeAt = 0

  constructor(idleMs: number) {
    this.idleMs = idleMs
  }

  /** no worker now: the account serves, and its next request starts one */
  get parked(): boolean {
    return this.#parked
  }

  /** starting a worker for a request: counted in the bound until it is ready or its start failed */
  get waking(): boolean {
    return this.#waking
  }

  /** may be picked now: awake, or parked with room in the bound (a parked account over it counts as recovering) */
  admits(): boolean {
    return !this.#parked || wakes.starting < wakes.limit
  }

  park(now: number): void {
    this.#parked = true
    this.#activeAt = now
  }

  wake(): void {
    this.#parked = false
    this.#waking = true
    wakes.starting++
  }

  /** the worker started for a request is ready, or its start failed: out of the bound */
  woke(): void {
    if (!this.#waking) return
    this.#waking = false
    wakes.starting--
  }

  /**
   * On a heartbeat: whether the worker has had no request for `idleMs`. A request is noticed through the account's
   * sequence number (`seq`) or its pending requests, so the request path pays nothing for this.
   */
  idle(now: number, seq: number, pending: number): boolean {
    if (pending > 0 || seq !== this.#idleSeq) {
      this.#idleSeq = seq
      this.#activeAt = now
      return false
    }
    return now - this.#activeAt >= this.idleMs
  }
}
