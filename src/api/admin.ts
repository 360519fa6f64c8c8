/**
 * Operating endpoints: probes, Prometheus metrics, the accounts' status, drain/resume, reload, the dashboard and its
 * once-a-second event stream. No authentication here: the guard in front of `/admin` and `GET /` is its own module.
 */
import { readFileSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import type { Context, Handler } from 'hono'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import { ConfigError } from '../config/load.ts'
import { scrub } from '../config/known-secrets.ts'
import type { AccountHandle, AccountState } from '../dispatch/account-handle.ts'
import type { Dispatcher } from '../dispatch/dispatcher.ts'
import { OrchestratorError } from '../errors.ts'
import { accountMetrics, registry, timeline, type TimelinePoint } from '../metrics.ts'
import type { ReloadResult } from '../orchestrator.ts'
import { WINDOWS, type UsageLedger, type UsageReport } from '../usage/ledger.ts'
import type { QuotaRule } from '../usage/quota.ts'
import type { AppDeps, AppEnv } from './app.ts'
import type { ClusterSummary } from '../cluster/node.ts'
import type { RouteKey, RouteTable } from './routes.ts'

/** What the orchestrator lends the admin routes beyond the dispatcher. */
export interface Operations {
  reload(): Promise<ReloadResult>
  /** the account drains or stops because a reload removed or changed it */
  retiring(account: AccountHandle): boolean
}

/** One row of `GET /admin/accounts` (and of the dashboard). Times in ms; epoch ms for instants. */
export interface AccountStatus {
  id: string
  state: AccountState
  /** removed or changed by a reload: draining, then stopping */
  retiring: boolean
  /** `dispatcher.lazyWorkers`: the account serves but has no worker now; its next request starts one */
  parked: boolean
  healthScore: number
  /** what the score is made of, as far as the account reports it */
  health: Record<string, unknown>
  inFlight: number
  limit: number
  /** the tool bridge: tool calls a live CLI of this account waits on, for the client's result (each conversation holds a slot) */
  pendingToolCalls: number
  /** waiting in the account's worker for a slot */
  queued: number
  p50Ms: number | null
  p99Ms: number | null
  completed: number
  failed: number
  /** the client went away before its answer (499): not the account's failure */
  cancelled: number
  /** worker thread restarts plus session (child process) restarts */
  restarts: number
  cooldownUntil: number | null
  lastError: string | null
  /** tokens and requests per model, in total and over 1 min, 1 h, 5 h, 24 h (in /admin/accounts, not in the live feed) */
  usage?: UsageReport
  quota: { rules: readonly QuotaRule[]; left: number } | null
  /** input + output tokens ever used (kept across restarts) */
  tokens: number
  /** the last 5 hours (the window subscriptions are metered over): requests and input + output tokens, all models */
  requests5h: number
  tokens5h: number
}

export interface StatusSnapshot {
  t: number
  /** the global queue */
  queued: number
  inFlight: number
  accounts: AccountStatus[]
  /** a fleet's node: its shared state `ok`, or `degraded` (Redis unreachable: serving from local state) */
  cluster?: ClusterSummary
}

export function accountStatus(account: AccountHandle, operations: Operations | undefined, now: number, ledger: UsageLedger, withUsage = false): AccountStatus {
  const m = accountMetrics(account.id)
  const beat = account.lastHeartbeat
  const outlier = account.outlier
  const parked = account.parked
  const lastError = account.lastError ?? beat?.lastError ?? null
  const health: Record<string, unknown> = {
    // a parked account has no worker to hear from: no age rather than a reassuring ~0
    heartbeatAgeMs: account.lastHeartbeatAt > 0 && !parked ? now - account.lastHeartbeatAt : null,
    loopDelayMs: beat?.loopDelayMs ?? null,
    childAlive: beat?.childAlive ?? null,
    session: account.sessionState,
    ...account.scoreParts,
    outlier: outlier.state(),
    consecutiveFailures: account.health.consecutiveFailures,
    ejections: outlier.ejections,
    ejectedUntil: outlier.ejectedUntil > now ? outlier.ejectedUntil : null,
  }
  const last5h = ledger.window(account.id, WINDOWS['5h']).counters
  const p50 = m.latency.percentile(0.5)
  const p99 = m.latency.percentile(0.99)
  return {
    id: account.id,
    state: account.state,
    retiring: operations?.retiring(account) ?? false,
    parked,
    healthScore: account.healthScore,
    health,
    inFlight: Math.min(account.assigned, account.maxConcurrency),
    limit: account.maxConcurrency,
    pendingToolCalls: account.parkedCalls,
    queued: Math.max(0, account.assigned - account.maxConcurrency),
    p50Ms: p50 ?? null,
    p99Ms: p99 ?? null,
    completed: m.completed,
    failed: m.failed,
    cancelled: m.cancelled,
    restarts: account.workerRestarts + (beat?.restarts ?? 0),
    cooldownUntil: outlier.cooldownUntil > now ? outlier.cooldownUntil : null,
    // an upstream's or a CLI's own words: they may quote the account's key back (secrets are scrubbed, config/load.ts)
    lastError: lastError === null ? null : scrub(lastError),
    ...(withUsage ? { usage: ledger.report(account.id) } : {}),
    quota: account.quota ? { rules: account.quota.rules, left: account.quota.left(account.assigned) } : null,
    tokens: ledger.tokens(account.id),
    requests5h: last5h.requests,
    tokens5h: last5h.input + last5h.output,
  }
}

export function snapshot(dispatcher: Dispatcher, operations: Operations | undefined, withUsage = false, cluster?: () => ClusterSummary): StatusSnapshot {
  const now = Date.now()
  let inFlight = dispatcher.queued
  const accounts = dispatcher.accounts.map((a) => {
    inFlight += a.assigned
    return accountStatus(a, operations, now, dispatcher.ledger, withUsage)
  })
  const snap: StatusSnapshot = { t: now, queued: dispatcher.queued, inFlight, accounts }
  if (cluster) snap.cluster = cluster()
  return snap
}

const DASHBOARD = readFileSync(new URL('./dashboard.html', import.meta.url), 'utf8')

export function adminRoutes(deps: AppDeps): RouteTable {
  const { dispatcher, operations } = deps
  const routes: RouteTable = {}
  const on = (key: RouteKey, handler: Handler<AppEnv>): void => { routes[key] = { hono: handler } }
  const summary = deps.cluster ? () => deps.cluster!.summary() : undefined
  const events = new EventHub(() => snapshot(dispatcher, operations, false, summary), deps.config.server.writeStallTimeoutMs)

  on('GET /readyz', (c) => {
    // "can take work": up with its session up, not cooling or ejected, within its quota (routable); or coming up on
    // its own with requests waiting for it (parked and not drained, or a reload's replacement starting). An account
    // whose session keeps failing is 'up' as a thread but takes nothing.
    const up = dispatcher.accounts.filter((a) => a.routable || (a.parked && a.state === 'up') || a.state === 'starting').length
    if (up === 0) throw new OrchestratorError('AGYC_NOT_READY', 'no account can take work now')
    return c.json({ status: 'ready', accountsUp: up, accounts: dispatcher.accounts.length })
  })

  on('GET /metrics', async (c) => c.body(await registry.metrics(), 200, { 'content-type': registry.contentType }))

  on('GET /admin/accounts', (c) => c.json(snapshot(dispatcher, operations, true, summary)))

  // a fleet's nodes, their accounts, and who holds which conversations and pending tool calls (docs/fleet.md)
  on('GET /admin/cluster', async (c) => {
    if (!deps.cluster) throw new OrchestratorError('AGYC_NOT_FOUND', 'this orchestrator is not part of a fleet (no `cluster` in its config)')
    const asked = Number(c.req.query('limit') ?? 100)
    const limit = Number.isInteger(asked) ? Math.min(1_000, Math.max(1, asked)) : 100
    return c.json(await deps.cluster.status(limit))
  })

  const find = (c: Context<AppEnv>): AccountHandle => {
    const id = c.req.param('id')
    const matches = dispatcher.accounts.filter((a) => a.id === id)
    // while a reload restarts an account, its old handle (retiring) and its replacement share the id
    const account = matches.find((a) => !operations?.retiring(a)) ?? matches[0]
    if (!account) throw new OrchestratorError('AGYC_NOT_FOUND', `no account "${id}"`)
    return account
  }

  on('POST /admin/accounts/:id/drain', (c) => {
    const account = find(c)
    void account.drain() // answers at once; the state shows 'draining' until resumed
    return c.json(accountStatus(account, operations, Date.now(), dispatcher.ledger, true))
  })

  // out of `failed` (a session that restarted too often), cooldown and ejection cleared
  on('POST /admin/accounts/:id/reset', async (c) => {
    const account = find(c)
    await account.reset()
    return c.json(accountStatus(account, operations, Date.now(), dispatcher.ledger, true))
  })

  on('POST /admin/accounts/:id/resume', (c) => {
    const account = find(c)
    if (operations?.retiring(account)) throw new OrchestratorError('AGYC_INVALID_REQUEST', `account "${account.id}" is being removed by a reload`)
    account.resume()
    return c.json(accountStatus(account, operations, Date.now(), dispatcher.ledger, true))
  })

  on('POST /admin/reload', async (c) => {
    if (!operations) throw new OrchestratorError('AGYC_CONFIG_INVALID', 'reload is not available')
    try {
      return c.json(await operations.reload())
    } catch (err) {
      // the same lines start-up prints, one per problem; the running configuration stays
      if (err instanceof ConfigError) throw new OrchestratorError('AGYC_CONFIG_INVALID', err.problems.join('\n'))
      throw err
    }
  })

  on('GET /admin/events', (c) => {
    // Hono routes HEAD to a GET handler; an event stream has no headers-only form, and writing it straight to node
    // would make @hono/node-server write headers a second time (ERR_HTTP_HEADERS_SENT on stderr)
    if (c.req.method === 'HEAD') {
      c.header('allow', 'GET')
      throw new OrchestratorError('AGYC_METHOD_NOT_ALLOWED', 'HEAD is not allowed on /admin/events (allowed: GET)')
    }
    events.add(c.env.outgoing, c.get('requestId'))
    return RESPONSE_ALREADY_SENT
  })

  on('GET /', (c) => c.html(DASHBOARD))
  return routes
}

/**
 * Server-sent events for the dashboard: one snapshot per second, built once and written to every open page. The
 * first event carries the timeline so far, so a fresh page draws the last minutes at once.
 */
class EventHub {
  readonly #clients = new Map<ServerResponse, { stalledSince: number }>()
  readonly #build: () => StatusSnapshot
  readonly #stallMs: number

  constructor(build: () => StatusSnapshot, stallMs: number) {
    this.#build = build
    this.#stallMs = stallMs
  }

  add(res: ServerResponse, requestId: string): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no', 'request-id': requestId })
    res.write(`retry: 2000\ndata: ${JSON.stringify({ ...this.#build(), history: timeline.points })}\n\n`)
    if (this.#clients.size === 0) timeline.listeners.add(this.#tick)
    this.#clients.set(res, { stalledSince: 0 })
    res.once('close', () => {
      this.#clients.delete(res)
      if (this.#clients.size === 0) timeline.listeners.delete(this.#tick)
    })
  }

  /**
   * A page that does not read its stream (a suspended tab) gets no frames until its socket drains: a snapshot is
   * worth nothing late, and queueing them would grow without bound. Stalled past the limit, it is cut.
   */
  #tick = (point: TimelinePoint): void => {
    const frame = `data: ${JSON.stringify({ ...this.#build(), point })}\n\n`
    const now = Date.now()
    for (const [res, client] of this.#clients) {
      if (res.writableNeedDrain) {
        if (client.stalledSince === 0) client.stalledSince = now
        else if (now - client.stalledSince > this.#stallMs) res.destroy()
        continue
      }
      client.stalledSince = 0
      res.write(frame)
    }
  }
}
