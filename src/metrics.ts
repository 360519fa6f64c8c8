/**
 * Metrics, in Prometheus text through prom-client, and the small live numbers the status API and dashboard read.
 *
 * The hot path touches plain numbers only: a request that settles bumps a few fields of its account's
 * `AccountMetrics` (found once per request by id) and a bucket of a typed array. prom-client's own labelled children
 * re-hash their label object on every `inc()`/`observe()` (~250–300 ns each, measured with prom-client 15.1.3), so
 * the registry reads our numbers when it is scraped instead: counters and gauges through `collect()` callbacks,
 * histograms through a registered metric whose `get()` returns prom-client's value shape. Live numbers of the
 * dispatcher (queue depth, in-flight, health score, restarts) are read the same way, on scrape, never on change.
 *
 * Label values stay bounded: account ids, HTTP status, strategy names, error codes; never request ids.
 * The registry and its metrics are defined once, at module load; an orchestrator registers itself with `watch()`.
 */
import { Counter, Gauge, Registry } from 'prom-client'
import { LatencyWindow, timeline } from './health/latency.ts'
import { FastHistogram, Series } from './metrics/histogram.ts'

export { LatencyWindow, timeline, type TimelinePoint } from './health/latency.ts'

export const registry = new Registry()

/** What the scrape-time gauges read of an account (the dispatch side's AccountHandle is one). */
export interface MeteredAccount {
  readonly id: string
  readonly state: string
  readonly assigned: number
  readonly maxConcurrency: number
  readonly healthScore: number
  readonly parked: boolean
  readonly workerRestarts: number
  readonly lastHeartbeatAt: number
  readonly lastHeartbeat: { readonly restarts: number } | undefined
  readonly quota: { left(assigned: number): number } | undefined
  readonly parkedCalls: number
}

/** What the scrape-time gauges read: the dispatcher. */
export interface MetricsSource {
  readonly accounts: readonly MeteredAccount[]
  readonly queued: number
  readonly ledger: {
    totals(): Iterable<[string, string, { requests: number; errors: number; input: number; output: number; cacheRead: number; cacheWrite: number }]>
    folds(): Iterable<[string, number]>
  }
  readonly affinity: { readonly hits: number; readonly misses: number }
}

const sources = new Set<MetricsSource>()
const byAccount = new Map<string, AccountMetrics>()

interface RequestCell { status: number; strategy: string; n: number }

/** Everything counted for one account. Made once per account id and kept; `settled()` is the per-request cost. */
export class AccountMetrics {
  readonly id: string
  readonly latency = new LatencyWindow()
  readonly ttfb: Series
  readonly duration: Series
  /** requests answered 200 (a stream that ended with an error event counts in `failed`) */
  completed = 0
  failed = 0
  /** requests whose client went away first (499 AGYC_CANCELLED): says nothing of the account, so not in `failed` */
  cancelled = 0
  failovers = 0
  cooldowns = 0
  ejections = 0
  /** (status, strategy) pairs seen: a handful per account, searched linearly, allocated once each */
  readonly requests: RequestCell[] = []

  constructor(id: string) {
    this.id = id
    this.ttfb = new Series({ account: id })
    this.duration = new Series({ account: id })
  }

  /** per-request cost: a short linear search, a few increments, two bucket searches */
  settled(status: number, strategy: string, ok: boolean, ttfbMs: number | undefined, durationMs: number): void {
    const cells = this.requests
    let cell: RequestCell | undefined
    for (let i = 0; i < cells.length; i++) {
      if (cells[i].status === status && cells[i].strategy === strategy) { cell = cells[i]; break }
    }
    if (!cell) cells.push(cell = { status, strategy, n: 0 })
    cell.n++
    if (ok) {
      this.completed++
      this.latency.record(durationMs)
    } else if (status === 499) {
      this.cancelled++
    } else {
      this.failed++
    }
    if (ttfbMs !== undefined) this.ttfb.observe(ttfbMs / 1000)
    this.duration.observe(durationMs / 1000)
  }
}

/** The account's metrics object; made on first use and kept until `forgetAccount`. */
export function accountMetrics(id: string): AccountMetrics {
  let m = byAccount.get(id)
  if (!m) byAccount.set(id, m = new AccountMetrics(id))
  return m
}

/** The account left the configuration: its series end. */
export function forgetAccount(id: string): void {
  byAccount.delete(id)
}

// ── requests and errors that never reached an account (bad request, queue full…) ────────────────────────────────
const unassigned: RequestCell[] = []
const errorCounts = new Map<string, number>()
const queueWait = new Series({})

/**
 * One request settled: the one call the API makes per request (`Exchange`, and the error funnel for requests that
 * never became a job). Times in ms; `queueMs` undefined when no account took the request, `ttfbMs` when no byte of an
 * answer was produced. `code` is the error code when the request failed, also after a 200 stream began.
 */
export function requestSettled(
  accountId: string | undefined, status: number, strategy: string, code: string | undefined,
  queueMs: number | undefined, ttfbMs: number | undefined, durationMs: number,
): void {
  const ok = status === 200 && code === undefined
  if (accountId !== undefined) accountMetrics(accountId).settled(status, strategy, ok, ttfbMs, durationMs)
  else {
    let cell: RequestCell | undefined
    for (let i = 0; i < unassigned.length; i++) {
      if (unassigned[i].status === status && unassigned[i].strategy === strategy) { cell = unassigned[i]; break }
    }
    if (!cell) unassigned.push(cell = { status, strategy, n: 0 })
    cell.n++
  }
  if (code !== undefined) errorCounts.set(code, (errorCounts.get(code) ?? 0) + 1)
  if (queueMs !== undefined) queueWait.observe(queueMs / 1000)
  timeline.record(ok, durationMs)
}

/**
 * Counters the health and failover code calls. Rare events: a map lookup per call is fine.
 * @example metrics.failover(account.id) // a request left this account for another before any byte was sent
 */
export const metrics = {
  failover(accountId: string): void { accountMetrics(accountId).failovers++ },
  cooldown(accountId: string): void { accountMetrics(accountId).cooldowns++ },
  ejection(accountId: string): void { accountMetrics(accountId).ejections++ },
}

/** Registers a dispatcher as the source of the scrape-time gauges and starts the per-second timeline. */
export function watch(source: MetricsSource): () => void {
  sources.add(source)
  timeline.run(true)
  return () => {
    sources.delete(source)
    if (sources.size === 0) timeline.run(false)
  }
}

function* liveAccounts(): Generator<MeteredAccount> {
  for (const s of sources) yield* s.accounts
}

/** requests taken by each front door (a bounded label: the doors are the route table's) */
const doorCounts = new Map<string, number>()
export function doorRequest(path: string): void {
  doorCounts.set(path, (doorCounts.get(path) ?? 0) + 1)
}

// ── the registry's view ─────────────────────────────────────────────────────────────────────────────────────────────
new Counter({
  name: 'agyc_requests_total',
  help: 'Requests answered, by account (empty: answered before any account was chosen), HTTP status and strategy',
  labelNames: ['account', 'status', 'strategy'],
  registers: [registry],
  collect() {
    this.reset()
    for (const cell of unassigned) this.inc({ account: '', status: cell.status, strategy: cell.strategy }, cell.n)
    for (const m of byAccount.values()) {
      for (const cell of m.requests) this.inc({ account: m.id, status: cell.status, strategy: cell.strategy }, cell.n)
    }
  },
})

new Counter({
  name: 'agyc_front_door_requests_total',
  help: 'Requests each front door read, checked and admitted (/v1/messages, /v1/chat/completions, /v1/responses)',
  labelNames: ['door'],
  registers: [registry],
  collect() {
    this.reset()
    for (const [door, n] of doorCounts) this.inc({ door }, n)
  },
})

new Counter({
  name: 'agyc_errors_total',
  help: 'Errors answered to clients, by code (src/errors.ts)',
  labelNames: ['code'],
  registers: [registry],
  collect() {
    this.reset()
    for (const [code, n] of errorCounts) this.inc({ code }, n)
  },
})

const perAccountCounter = (name: string, help: string, read: (m: AccountMetrics) => number): void => {
  new Counter({
    name, help, labelNames: ['account'], registers: [registry],
    collect() {
      this.reset()
      for (const m of byAccount.values()) this.inc({ account: m.id }, read(m))
    },
  })
}
perAccountCounter('agyc_failovers_total', 'Requests moved from this account to another before any byte was sent', (m) => m.failovers)
perAccountCounter('agyc_cooldowns_total', 'Times this account was put in cooldown after a 429/529 from its upstream', (m) => m.cooldowns)
perAccountCounter('agyc_ejections_total', 'Times this account was ejected as an outlier', (m) => m.ejections)

new Counter({
  name: 'agyc_account_worker_restarts_total',
  help: 'Times the account worker thread died and was started again',
  labelNames: ['account'],
  registers: [registry],
  collect() {
    this.reset()
    for (const a of liveAccounts()) this.inc({ account: a.id }, a.workerRestarts)
  },
})

new Counter({
  name: 'agyc_account_session_restarts_total',
  help: "Times the account's session (its child process) was restarted, as its worker last reported",
  labelNames: ['account'],
  registers: [registry],
  collect() {
    this.reset()
    for (const a of liveAccounts()) this.inc({ account: a.id }, a.lastHeartbeat?.restarts ?? 0)
  },
})

const gauge = (name: string, help: string, labelNames: string[], collect: (g: Gauge<string>) => void): void => {
  new Gauge({ name, help, labelNames, registers: [registry], collect() { this.reset(); collect(this) } })
}

gauge('agyc_queue_depth', 'Requests waiting in the global queue', [], (g) => {
  let n = 0
  for (const s of sources) n += s.queued
  g.set(n)
})
gauge('agyc_in_flight', 'Requests handed to accounts (running or waiting in a worker) plus those in the global queue', [], (g) => {
  let n = 0
  for (const s of sources) n += s.queued
  for (const a of liveAccounts()) n += a.assigned
  g.set(n)
})
gauge('agyc_account_in_flight', 'Requests running on the account (at most its limit)', ['account'], (g) => {
  for (const a of liveAccounts()) g.set({ account: a.id }, Math.min(a.assigned, a.maxConcurrency))
})
gauge('agyc_account_queue_depth', "Requests waiting in the account's worker for a slot", ['account'], (g) => {
  for (const a of liveAccounts()) g.set({ account: a.id }, Math.max(0, a.assigned - a.maxConcurrency))
})
gauge('agyc_account_max_concurrency', "The account's concurrency limit", ['account'], (g) => {
  for (const a of liveAccounts()) g.set({ account: a.id }, a.maxConcurrency)
})
gauge('agyc_account_health_score', 'Health score in [0, 1]; 1 when nothing counts against the account', ['account'], (g) => {
  for (const a of liveAccounts()) g.set({ account: a.id }, a.healthScore)
})
gauge('agyc_account_state', 'The account state: 1 for its current state', ['account', 'state'], (g) => {
  for (const a of liveAccounts()) g.set({ account: a.id, state: a.state }, 1)
})
gauge('agyc_account_heartbeat_age_seconds', "Seconds since the account's worker last reported (no sample while parked)", ['account'], (g) => {
  const now = Date.now()
  for (const a of liveAccounts()) if (a.lastHeartbeatAt > 0 && !a.parked) g.set({ account: a.id }, (now - a.lastHeartbeatAt) / 1000)
})
gauge('agyc_account_pending_tool_calls', 'The tool bridge: tool calls a live CLI of the account waits on, for the client', ['account'], (g) => {
  for (const a of liveAccounts()) g.set({ account: a.id }, a.parkedCalls)
})
gauge('agyc_account_parked', 'dispatcher.lazyWorkers: 1 while the account has no worker (its next request starts one)', ['account'], (g) => {
  for (const a of liveAccounts()) g.set({ account: a.id }, a.parked ? 1 : 0)
})

new Counter({
  name: 'agyc_affinity_total',
  help: 'Sticky requests by outcome: hit (went to the conversation\'s home account) or miss (a strategy chose)',
  labelNames: ['result'],
  registers: [registry],
  collect() {
    this.reset()
    for (const s of sources) {
      this.inc({ result: 'hit' }, s.affinity.hits)
      this.inc({ result: 'miss' }, s.affinity.misses)
    }
  },
})

new Counter({
  name: 'agyc_tokens_total',
  help: 'Tokens used, by account, model and kind (input, output, cache_read, cache_write), kept across restarts',
  labelNames: ['account', 'model', 'kind'],
  registers: [registry],
  collect() {
    this.reset()
    for (const s of sources) {
      for (const [account, model, c] of s.ledger.totals()) {
        this.inc({ account, model, kind: 'input' }, c.input)
        this.inc({ account, model, kind: 'output' }, c.output)
        this.inc({ account, model, kind: 'cache_read' }, c.cacheRead)
        this.inc({ account, model, kind: 'cache_write' }, c.cacheWrite)
      }
    }
  },
})

const usageCounter = (name: string, help: string, read: (c: { requests: number; errors: number }) => number): void => {
  new Counter({
    name, help, labelNames: ['account', 'model'], registers: [registry],
    collect() {
      this.reset()
      for (const s of sources) for (const [account, model, c] of s.ledger.totals()) this.inc({ account, model }, read(c))
    },
  })
}
usageCounter('agyc_usage_requests_total', 'Requests answered, by account and model, kept across restarts (usage accounting)', (c) => c.requests)
usageCounter('agyc_usage_errors_total', 'Requests the account failed, by account and model, kept across restarts (usage accounting)', (c) => c.errors)

// the `model` label is a client string: past the bound (src/usage/model-names.ts) it reads "other", and this says how often
new Counter({
  name: 'agyc_labels_folded_total',
  help: 'Requests whose model name was recorded as "other" (an undeclared name past the per-account bound), by account and label, since start',
  labelNames: ['account', 'label'],
  registers: [registry],
  collect() {
    this.reset()
    for (const s of sources) for (const [account, n] of s.ledger.folds()) this.inc({ account, label: 'model' }, n)
  },
})

gauge('agyc_account_quota_left', "Share of the account's tightest quota budget left, in [0, 1] (accounts with a quota only)", ['account'], (g) => {
  for (const a of liveAccounts()) if (a.quota) g.set({ account: a.id }, a.quota.left(a.assigned))
})

new FastHistogram(registry, 'agyc_queue_wait_seconds', 'Time from arrival until an account took the request', () => [queueWait])
new FastHistogram(registry, 'agyc_time_to_first_byte_seconds', 'Time from arrival until the first byte of the answer, by account',
  () => [...byAccount.values()].map((m) => m.ttfb))
new FastHistogram(registry, 'agyc_request_duration_seconds', 'Time from arrival until the answer ended, by account',
  () => [...byAccount.values()].map((m) => m.duration))
