/**
 * A front door's body, read and checked: its bytes held against the body budget while they arrive and are parsed
 * (body-budget.ts), and a large body parsed and checked on a helper thread, so one client's 27 MiB body of a million
 * text blocks does not stall every other client for seconds on the main thread (docs/security.md, "Bounds"). The helper
 * thread is a piscina pool of one, as the card's pool was made for: a task per body; it starts with the first large
 * body and ends after a minute without one.
 */
import type { IncomingMessage } from 'node:http'
import { Piscina } from 'piscina'
import type { ServerConfig } from '../config/schema.ts'
import { OrchestratorError } from '../errors.ts'
import type { BodyBudget } from './body-budget.ts'
import { bodyText, type RequestBody } from '../protocol/run-request.ts'
import { readBody } from './body.ts'
import { checkRequest, type Checked, type CheckKind, type CheckTask } from './request-check.ts'

/** from this size on, a body is checked off the main thread (docs/performance.md, "Figures behind the code") */
export const LARGE_BODY_BYTES = 256 * 1024

let pool: Piscina | undefined

function checkOffThread(task: CheckTask): Promise<Checked> {
  pool ??= new Piscina({
    filename: new URL('./check-task.ts', import.meta.url).href,
    minThreads: 0,
    maxThreads: 1,
    idleTimeout: 60_000,
  })
  return pool.run(task) as Promise<Checked>
}

/** For shutdown: the helper thread, if one runs, ends. */
export async function closeCheckPool(): Promise<void> {
  const p = pool
  pool = undefined
  await p?.destroy()
}

export type CheckedOk<K extends CheckKind> = Extract<Checked, { ok: true; kind: K extends 'count_tokens' ? 'count_tokens' : 'messages' }>

/** Reads `incoming`'s body and checks it as `kind`; throws the error to answer (413, 408, 400, 529). */
export async function readChecked<K extends CheckKind>(incoming: IncomingMessage, server: ServerConfig, budget: BodyBudget,
  kind: K): Promise<{ body: RequestBody; checked: CheckedOk<K> }> {
  const hold = budget.hold()
  try {
    const bytes = await readBody(incoming, server.bodyLimitBytes, server.bodyIdleTimeoutMs, hold, LARGE_BODY_BYTES)
    // a large body stays bytes in shared memory: the check thread and the account's worker decode it, never this one
    const summarize = bytes.byteLength >= LARGE_BODY_BYTES
    const body = summarize ? bytes : bodyText(bytes)
    const task: CheckTask = {
      kind, body, summarize,
      limits: { maxMessages: server.maxMessages, maxJsonDepth: server.maxJsonDepth },
      // what affinity reads of the headers, for a summary's key; the rest stays here
      headers: summarize ? { 'x-agyc-session': incoming.headers['x-agyc-session'], 'x-claude-code-session-id': incoming.headers['x-claude-code-session-id'] } : {},
    }
    const checked = summarize ? await checkOffThread(task) : checkRequest(task)
    if (!checked.ok) throw new OrchestratorError(checked.code, checked.message, { param: checked.param })
    return { body, checked: checked as CheckedOk<K> }
  } finally {
    hold.release()
  }
}
