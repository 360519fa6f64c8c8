/**
 * Fleet-wide budgets (issue 17): the same rules as src/usage/quota.ts (requests and/or tokens per `1m`, `1h`, `5h`,
 * `24h`), counted in Redis so that N nodes enforce one budget, not N. A request reserves a slot in every scope it
 * touches (its account, and the credential it spends) in one Lua script: all or nothing, atomic, so concurrent
 * reservations from any number of nodes never take the request count past a limit.
 *
 * Windows are sums of 60 buckets of window/60 (1 s for `1m`, 24 min for `24h`): bounded memory, one HGETALL of ≤ 61
 * fields per rule. The count spans 61 buckets, the current one included, so a request leaves the count between one
 * window and one window plus a bucket after it was reserved, never before: the budget holds over every rolling window.
 * All times are Redis's clock (TIME), so nodes whose clocks disagree still share one window.
 *
 * Tokens, as locally: a request is admitted while the tokens counted are below the limit; its answer may overshoot by
 * its own size. A reservation may carry an estimate (counted at once, so concurrent requests see each other) that
 * `settle` replaces with the real figure, counted when the answer ends, like the local ledger does.
 */
import type { QuotaRule } from '../usage/quota.ts'
import { WINDOWS, type WindowName } from '../usage/ledger.ts'
import { keys } from './keys.ts'
import { defineScript, UNKNOWN, type Store, type Unknown } from './store.ts'

const BUCKETS = 60

/** The rules of one scope (`scopes.account(id)`, `scopes.credential(id)`). */
export interface QuotaScope { scope: string; rules: readonly QuotaRule[] }

interface Rule { scope: string; window: WindowName; requests: number; tokens: number } // -1: no limit

/** What `settle` and `release` need; a plain object (it may cross a thread or be logged). */
export interface Reservation {
  /** Redis's clock at the reservation, ms */
  readonly at: number
  readonly tokens: number
  readonly rules: readonly Rule[]
}

export type Reserved =
  | { ok: true; reservation: Reservation }
  | { ok: false; scope: string; window: WindowName; retryAfterMs: number }

export interface WindowUsage { window: WindowName; requests: number; tokens: number }

// Shared by the scripts: the clock, and the sum of one hash over the window (deleting the buckets that left it).
const PRELUDE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function sum(key, oldest)
  local total, first = 0, nil
  local flat = redis.call('HGETALL', key)
  for j = 1, #flat, 2 do
    local b = tonumber(flat[j])
    if b < oldest then
      redis.call('HDEL', key, flat[j])
    else
      local v = tonumber(flat[j + 1])
      total = total + v
      if v > 0 and (first == nil or b < first) then first = b end
    end
  end
  return total, first
end
`

// KEYS: r, t per rule. ARGV: estimate, n, then per rule: bucketMs, requests limit, tokens limit (-1: none).
// Returns {1, now} or {0, index of the refusing rule, ms until its oldest counted bucket leaves}.
const RESERVE = defineScript(`${PRELUDE}
local estimate = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
for i = 1, n do
  local bucketMs, maxR, maxT = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
  local c = math.floor(now / bucketMs)
  local oldest = c - ${BUCKETS}
  if maxR >= 0 then
    local used, first = sum(KEYS[2 * i - 1], oldest)
    if used + 1 > maxR then return {0, i, ((first or c) + ${BUCKETS} + 1) * bucketMs - now} end
  end
  if maxT >= 0 then
    local used, first = sum(KEYS[2 * i], oldest)
    if used >= maxT then return {0, i, ((first or c) + ${BUCKETS} + 1) * bucketMs - now} end
  end
end
for i = 1, n do
  local bucketMs, maxR, maxT = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
  local c = math.floor(now / bucketMs)
  if maxR >= 0 then
    redis.call('HINCRBY', KEYS[2 * i - 1], c, 1)
    redis.call('PEXPIRE', KEYS[2 * i - 1], (${BUCKETS} + 2) * bucketMs)
  end
  if maxT >= 0 and estimate > 0 then
    redis.call('HINCRBY', KEYS[2 * i], c, estimate)
    redis.call('PEXPIRE', KEYS[2 * i], (${BUCKETS} + 2) * bucketMs)
  end
end
return {1, now}
`)

// Takes back what a reservation counted in its own bucket (if that bucket still counts) and counts `tokens` now.
// KEYS: r, t per rule. ARGV: at, estimate, requests to take back (0 or 1), tokens used, n, per rule: bucketMs, hasR, hasT.
const ADJUST = defineScript(`${PRELUDE}
local at, estimate, back, used, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
for i = 1, n do
  local bucketMs, hasR, hasT = tonumber(ARGV[3 * i + 3]), ARGV[3 * i + 4] == '1', ARGV[3 * i + 5] == '1'
  local b = math.floor(at / bucketMs)
  local live = b >= math.floor(now / bucketMs) - ${BUCKETS}
  if hasR and back > 0 and live and redis.call('HEXISTS', KEYS[2 * i - 1], b) == 1 then
    redis.call('HINCRBY', KEYS[2 * i - 1], b, -back)
  end
  if hasT then
    if estimate > 0 and live and redis.call('HEXISTS', KEYS[2 * i], b) == 1 then
      redis.call('HINCRBY', KEYS[2 * i], b, -estimate)
    end
    if used > 0 then
      redis.call('HINCRBY', KEYS[2 * i], math.floor(now / bucketMs), used)
      redis.call('PEXPIRE', KEYS[2 * i], (${BUCKETS} + 2) * bucketMs)
    end
  end
end
return 1
`)

// KEYS: r, t per window. ARGV: n, bucketMs per window. Returns requests, tokens per window.
const USAGE = defineScript(`${PRELUDE}
local out = {}
for i = 1, tonumber(ARGV[1]) do
  local bucketMs = tonumber(ARGV[i + 1])
  local oldest = math.floor(now / bucketMs) - ${BUCKETS}
  out[2 * i - 1] = sum(KEYS[2 * i - 1], oldest)
  out[2 * i] = sum(KEYS[2 * i], oldest)
end
return out
`)

const bucketMs = (window: WindowName): number => WINDOWS[window] / BUCKETS

/**
 * One rule per scope and window, the tightest limits of the configured ones (two rules on one window would otherwise
 * count the same request twice in the same hash).
 */
function merge(scopes: readonly QuotaScope[]): Rule[] {
  const byKey = new Map<string, Rule>()
  for (const { scope, rules } of scopes) {
    for (const r of rules) {
      const k = `${scope}\0${r.window}`
      const rule = byKey.get(k) ?? { scope, window: r.window, requests: -1, tokens: -1 }
      if (r.requests !== undefined) rule.requests = rule.requests < 0 ? r.requests : Math.min(rule.requests, r.requests)
      if (r.tokens !== undefined) rule.tokens = rule.tokens < 0 ? r.tokens : Math.min(rule.tokens, r.tokens)
      byKey.set(k, rule)
    }
  }
  return [...byKey.values()]
}

export class FleetQuota {
  readonly #store: Store

  constructor(store: Store) {
    this.#store = store
  }

  #keys(rules: readonly { scope: string; window: WindowName }[]): string[] {
    const p = this.#store.prefix
    return rules.flatMap((r) => [keys.quota(p, r.scope, r.window, 'r'), keys.quota(p, r.scope, r.window, 't')])
  }

  /**
   * Reserves one request in every scope, or none. UNKNOWN: Redis did not answer; the caller applies its local quota.
   * @example
   * const r = await quota.reserve([{ scope: scopes.account('a1'), rules: account.quota }], { tokens: 5_000 })
   * if (r !== UNKNOWN && !r.ok) skip(account, r.retryAfterMs)
   */
  async reserve(scopes: readonly QuotaScope[], options: { tokens?: number } = {}): Promise<Reserved | Unknown> {
    const rules = merge(scopes)
    const tokens = Math.max(0, Math.round(options.tokens ?? 0))
    if (rules.length === 0) return { ok: true, reservation: { at: 0, tokens, rules } }
    const args: number[] = [tokens, rules.length]
    for (const r of rules) args.push(bucketMs(r.window), r.requests, r.tokens)
    const reply = await this.#store.eval(RESERVE, this.#keys(rules), args)
    if (reply === UNKNOWN) return UNKNOWN
    const [ok, a, b] = reply as number[]
    if (ok === 1) return { ok: true, reservation: { at: a, tokens, rules } }
    const refused = rules[a - 1]
    return { ok: false, scope: refused.scope, window: refused.window, retryAfterMs: Math.max(0, b) }
  }

  /** The answer ended (served or failed upstream): the estimate is replaced by the tokens it really used. */
  settle(reservation: Reservation, usedTokens: number): Promise<void | Unknown> {
    return this.#adjust(reservation, 0, Math.max(0, Math.round(usedTokens)))
  }

  /** The request never reached an upstream (placed elsewhere, refused locally): its slot and estimate come back. */
  release(reservation: Reservation): Promise<void | Unknown> {
    return this.#adjust(reservation, 1, 0)
  }

  async #adjust(reservation: Reservation, back: number, used: number): Promise<void | Unknown> {
    const { rules, at, tokens } = reservation
    if (rules.length === 0) return
    const args: number[] = [at, tokens, back, used, rules.length]
    for (const r of rules) args.push(bucketMs(r.window), r.requests >= 0 ? 1 : 0, r.tokens >= 0 ? 1 : 0)
    const reply = await this.#store.eval(ADJUST, this.#keys(rules), args)
    if (reply === UNKNOWN) return UNKNOWN
  }

  /** What one scope has used in each window (for /admin/cluster and the `quota` strategy's "share left"). */
  async usage(scope: string, windows: readonly WindowName[]): Promise<WindowUsage[] | Unknown> {
    if (windows.length === 0) return []
    const reply = await this.#store.eval(USAGE, this.#keys(windows.map((window) => ({ scope, window }))),
      [windows.length, ...windows.map(bucketMs)])
    if (reply === UNKNOWN) return UNKNOWN
    const n = reply as number[]
    return windows.map((window, i) => ({ window, requests: n[2 * i], tokens: n[2 * i + 1] }))
  }
}
