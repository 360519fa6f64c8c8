/**
 * Usage accounting per account and model: requests, errors, input, output, cache-read and cache-write tokens, in
 * total and over rolling windows (1 min, 1 h, 5 h, 24 h). Windows are sums of time buckets: 10 s buckets kept for an
 * hour serve the windows up to 1 h, 5 min buckets kept for a day serve the longer ones, so a window is exact to a
 * bucket (±10 s, ±5 min) and memory stays bounded whatever the traffic. The ledger survives restarts in one JSON file,
 * written atomically (temp file + rename); a corrupt file is set aside and reported, never fatal.
 *
 * Model names are client strings: how many series an account holds is bounded by model-names.ts (its declared names,
 * 16 others, one `other` series for the rest), when recording and when loading a file an older version wrote unbounded.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import type { Usage } from '../protocol/messages.ts'
import { MAX_MODEL_NAME_LENGTH, MAX_UNDECLARED_MODELS, OTHER_MODEL, type DeclaredModels } from './model-names.ts'

export const WINDOWS = { '1m': 60_000, '1h': 3_600_000, '5h': 18_000_000, '24h': 86_400_000 } as const
export type WindowName = keyof typeof WINDOWS

const FINE_MS = 10_000
const FINE_KEEP_MS = 3_600_000
const COARSE_MS = 300_000
const COARSE_KEEP_MS = 86_400_000

export interface Counters {
  requests: number
  errors: number
  input: number
  output: number
  cacheRead: number
  cacheWrite: number
}

export const zero = (): Counters => ({ requests: 0, errors: 0, input: 0, output: 0, cacheRead: 0, cacheWrite: 0 })

function add(into: Counters, from: Counters): void {
  into.requests += from.requests
  into.errors += from.errors
  into.input += from.input
  into.output += from.output
  into.cacheRead += from.cacheRead
  into.cacheWrite += from.cacheWrite
}

/** `usage` of one answer as counters */
export function countersOf(usage: Usage | undefined, error: boolean): Counters {
  const u = (usage ?? {}) as Partial<Record<string, unknown>>
  const n = (k: string): number => (typeof u[k] === 'number' ? (u[k] as number) : 0)
  return {
    requests: 1, errors: error ? 1 : 0, input: n('input_tokens'), output: n('output_tokens'),
    cacheRead: n('cache_read_input_tokens'), cacheWrite: n('cache_creation_input_tokens'),
  }
}

/** Buckets of one size, keyed by their start time. */
class Buckets {
  readonly size: number
  readonly keep: number
  readonly map = new Map<number, Counters>()
  constructor(size: number, keep: number) {
    this.size = size
    this.keep = keep
  }

  add(now: number, delta: Counters): void {
    const start = now - (now % this.size)
    let bucket = this.map.get(start)
    if (!bucket) {
      this.map.set(start, bucket = zero())
      for (const t of this.map.keys()) if (t <= now - this.keep) this.map.delete(t)
    }
    add(bucket, delta)
  }

  /** sums the buckets that started within the last `ms`; also returns the oldest such start */
  sum(now: number, ms: number): { counters: Counters; oldest: number } {
    const counters = zero()
    let oldest = Number.POSITIVE_INFINITY
    for (const [start, bucket] of this.map) {
      if (start > now - ms) {
        add(counters, bucket)
        if (start < oldest) oldest = start
      }
    }
    return { counters, oldest }
  }
}

class Series {
  readonly total = zero()
  readonly fine = new Buckets(FINE_MS, FINE_KEEP_MS)
  readonly coarse = new Buckets(COARSE_MS, COARSE_KEEP_MS)

  add(now: number, delta: Counters): void {
    add(this.total, delta)
    this.fine.add(now, delta)
    this.coarse.add(now, delta)
  }

  window(now: number, ms: number): { counters: Counters; oldest: number } {
    return ms <= FINE_KEEP_MS ? this.fine.sum(now, ms) : this.coarse.sum(now, ms)
  }

  /** adds `from`'s totals and buckets into this one (folding a series into `other`) */
  merge(from: Series): void {
    add(this.total, from.total)
    for (const [mine, theirs] of [[this.fine, from.fine], [this.coarse, from.coarse]] as const) {
      for (const [start, c] of theirs.map) {
        const bucket = mine.map.get(start)
        if (bucket) add(bucket, c)
        else mine.map.set(start, add0(c))
      }
    }
  }
}

/** One account's series by model name, and how its names were bounded (model-names.ts). */
class AccountUsage {
  readonly models = new Map<string, Series>()
  /** names kept apart that the account did not declare (at most MAX_UNDECLARED_MODELS) */
  undeclared = 0
  /** requests recorded under `other` instead of their model's name, since this process started */
  folded = 0

  /** The series for `model`, made (or chosen: `other`) the first time a name is seen. */
  seriesFor(account: string, model: string, declared: DeclaredModels): Series {
    let name = model
    if (model !== OTHER_MODEL && !declared(account, model)) {
      if (model.length <= MAX_MODEL_NAME_LENGTH && this.undeclared < MAX_UNDECLARED_MODELS) this.undeclared++
      else {
        this.folded++
        name = OTHER_MODEL
      }
    }
    let series = this.models.get(name)
    if (!series) this.models.set(name, series = new Series())
    return series
  }

  /**
   * Series loaded from a file: the declared ones and `other` kept, then the others by most requests first while the
   * bound allows, the rest merged into `other` (a file an older version wrote without the bound).
   */
  static bounded(account: string, loaded: Map<string, Series>, declared: DeclaredModels): AccountUsage {
    const usage = new AccountUsage()
    const others: [string, Series][] = []
    for (const [name, series] of loaded) {
      if (name === OTHER_MODEL || declared(account, name)) usage.models.set(name, series)
      else others.push([name, series])
    }
    others.sort((a, b) => b[1].total.requests - a[1].total.requests)
    for (const [name, series] of others) {
      if (name.length <= MAX_MODEL_NAME_LENGTH && usage.undeclared < MAX_UNDECLARED_MODELS) {
        usage.models.set(name, series)
        usage.undeclared++
        continue
      }
      let other = usage.models.get(OTHER_MODEL)
      if (!other) usage.models.set(OTHER_MODEL, other = new Series())
      other.merge(series)
      usage.folded += series.total.requests
    }
    return usage
  }
}

export interface UsageReport {
  total: Counters
  windows: Record<WindowName, Counters>
  byModel: Record<string, { total: Counters; windows: Record<WindowName, Counters> }>
  /** requests recorded under `other` instead of their model's name since start-up (model-names.ts) */
  folded: number
}

interface SavedSeries { total: Counters; fine: [number, Counters][]; coarse: [number, Counters][] }
interface Saved { version: 1; accounts: Record<string, Record<string, SavedSeries>> }

export class UsageLedger {
  readonly #accounts = new Map<string, AccountUsage>()
  readonly #now: () => number
  dirty = false
  /** the names accounts declare, kept under their own name whatever the bound (model-names.ts `declaredIn`) */
  declared: DeclaredModels

  constructor(now: () => number = Date.now, declared: DeclaredModels = () => false) {
    this.#now = now
    this.declared = declared
  }

  /** Counts one answer of `account` under `model`, or under `other` past the bound (model-names.ts). */
  record(account: string, model: string, delta: Counters): void {
    let usage = this.#accounts.get(account)
    if (!usage) this.#accounts.set(account, usage = new AccountUsage())
    // a name already kept is one lookup; only a new or folded name asks whether it is declared
    const series = usage.models.get(model) ?? usage.seriesFor(account, model, this.declared)
    series.add(this.#now(), delta)
    this.dirty = true
  }

  /** The account's usage over the last `ms`, all models, and when the oldest part of it leaves the window. */
  window(account: string, ms: number): { counters: Counters; resetsAt: number } {
    const now = this.#now()
    const counters = zero()
    let oldest = Number.POSITIVE_INFINITY
    for (const series of this.#accounts.get(account)?.models.values() ?? []) {
      const w = series.window(now, ms)
      add(counters, w.counters)
      if (w.oldest < oldest) oldest = w.oldest
    }
    const size = ms <= FINE_KEEP_MS ? FINE_MS : COARSE_MS
    return { counters, resetsAt: Number.isFinite(oldest) ? oldest + size + ms : now }
  }

  report(account: string): UsageReport {
    const now = this.#now()
    const usage = this.#accounts.get(account)
    const report: UsageReport = { total: zero(), windows: windowsOf(() => zero()), byModel: {}, folded: usage?.folded ?? 0 }
    for (const [model, series] of usage?.models ?? []) {
      const windows = windowsOf((ms) => series.window(now, ms).counters)
      report.byModel[model] = { total: { ...series.total }, windows }
      add(report.total, series.total)
      for (const name of Object.keys(WINDOWS) as WindowName[]) add(report.windows[name], windows[name])
    }
    return report
  }

  /** Input + output tokens the account ever used, all models (cheap: totals only). */
  tokens(account: string): number {
    let n = 0
    for (const series of this.#accounts.get(account)?.models.values() ?? []) n += series.total.input + series.total.output
    return n
  }

  /** Every (account, model) total, for the metrics scrape. */
  *totals(): Generator<[string, string, Counters]> {
    for (const [account, usage] of this.#accounts) for (const [model, series] of usage.models) yield [account, model, series.total]
  }

  /** Per account, the requests recorded under `other` instead of their model's name since start-up. */
  *folds(): Generator<[string, number]> {
    for (const [account, usage] of this.#accounts) yield [account, usage.folded]
  }

  save(file: string): void {
    const saved: Saved = { version: 1, accounts: {} }
    for (const [account, usage] of this.#accounts) {
      const out: Record<string, SavedSeries> = {}
      for (const [model, s] of usage.models) out[model] = { total: s.total, fine: [...s.fine.map], coarse: [...s.coarse.map] }
      saved.accounts[account] = out
    }
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
    const temp = `${file}.${process.pid}.tmp`
    writeFileSync(temp, JSON.stringify(saved), { mode: 0o600 })
    renameSync(temp, file) // atomic: a reader sees the old file or the new one, never half of one
    this.dirty = false
  }

  /**
   * Loads `file` if it exists. A file that cannot be read as a ledger is renamed `<file>.corrupt-<time>` and
   * reported through `onCorrupt`; the ledger then starts empty. Each account's series are bounded as they load
   * (`declared`: the names kept whatever the bound), so a file written before the bound costs one load, not every
   * scrape after it.
   */
  static load(file: string, onCorrupt: (problem: string, setAside: string) => void, now: () => number = Date.now,
    declared: DeclaredModels = () => false): UsageLedger {
    const ledger = new UsageLedger(now, declared)
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      return ledger // no file yet
    }
    try {
      const saved = JSON.parse(text) as Saved
      if (saved?.version !== 1 || typeof saved.accounts !== 'object' || saved.accounts === null) throw new Error('not a usage ledger (version 1)')
      for (const [account, models] of Object.entries(saved.accounts)) {
        const map = new Map<string, Series>()
        for (const [model, s] of Object.entries(models)) {
          const series = new Series()
          add(series.total, checked(s.total))
          for (const [t, c] of s.fine) series.fine.map.set(Number(t), add0(checked(c)))
          for (const [t, c] of s.coarse) series.coarse.map.set(Number(t), add0(checked(c)))
          map.set(model, series)
        }
        ledger.#accounts.set(account, AccountUsage.bounded(account, map, declared))
        if (map.size > ledger.#accounts.get(account)!.models.size) ledger.dirty = true // saved bounded at the next save
      }
    } catch (err) {
      const aside = `${file}.corrupt-${new Date(now()).toISOString().replaceAll(':', '-')}`
      try { renameSync(file, aside) } catch { /* reported all the same */ }
      onCorrupt((err as Error).message, aside)
      return new UsageLedger(now, declared)
    }
    return ledger
  }
}

function windowsOf(f: (ms: number) => Counters): Record<WindowName, Counters> {
  return { '1m': f(WINDOWS['1m']), '1h': f(WINDOWS['1h']), '5h': f(WINDOWS['5h']), '24h': f(WINDOWS['24h']) }
}

function checked(c: unknown): Counters {
  const o = c as Record<string, unknown>
  for (const k of ['requests', 'errors', 'input', 'output', 'cacheRead', 'cacheWrite']) {
    if (typeof o?.[k] !== 'number' || !Number.isFinite(o[k])) throw new Error(`bad counter "${k}"`)
  }
  return o as unknown as Counters
}

const add0 = (c: Counters): Counters => {
  const out = zero()
  add(out, c)
  return out
}
