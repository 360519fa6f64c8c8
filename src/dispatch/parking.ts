/**
 * Lazy workers (`dispatcher.lazyWorkers`): which accounts start parked, without a worker, until their first request.
 * README, "Memory and start-up: what a worker costs, and lazy workers".
 */
import type { DispatcherConfig, SessionConfig } from '../config/schema.ts'
import { assertNever } from '../protocol/assert-never.ts'

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
