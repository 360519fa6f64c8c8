/**
 * Live latency windows behind the status API and the dashboard (not Prometheus): the last completed requests of each
 * account for its p50/p99, and one point per second of throughput and p99 for the plot. Bounded memory at any rate.
 */
/** The per-account window behind p50/p99 in the status API: the last 256 completed requests, ms. */
export class LatencyWindow {
  readonly #samples: Float64Array
  #next = 0
  #filled = 0
  constructor(size = 256) {
    this.#samples = new Float64Array(size)
  }

  record(ms: number): void {
    this.#samples[this.#next] = ms
    this.#next = (this.#next + 1) % this.#samples.length
    if (this.#filled < this.#samples.length) this.#filled++
  }

  get size(): number { return this.#filled }

  /** `p` in [0, 1]; undefined while empty. Sorts a copy: read once per second, not per request. */
  percentile(p: number): number | undefined {
    if (this.#filled === 0) return undefined
    const sorted = this.#samples.slice(0, this.#filled).sort()
    return sorted[Math.min(this.#filled - 1, Math.floor(p * this.#filled))]
  }

  clear(): void {
    this.#next = 0
    this.#filled = 0
  }
}

// ── throughput and p99 per second, for the dashboard's plot ────────────────────────────────────────────────────────
export interface TimelinePoint {
  /** epoch ms at the end of the second */
  t: number
  /** requests completed (200) and failed in that second */
  ok: number
  failed: number
  /** p99 of the completed requests' duration in that second, ms (null when none completed) */
  p99: number | null
}

export class Timeline {
  readonly points: TimelinePoint[] = []
  readonly #keep = 600 // 10 minutes at one point per second
  #ok = 0
  #failed = 0
  // a uniform sample of this second's durations (reservoir sampling): bounded memory at any rate
  readonly #sample = new Float64Array(2048)
  #seen = 0
  #ticker: NodeJS.Timeout | undefined
  /** called after each second's point is added (the dashboard's event stream) */
  readonly listeners = new Set<(point: TimelinePoint) => void>()

  record(ok: boolean, durationMs: number): void {
    if (!ok) { this.#failed++; return }
    this.#ok++
    const i = this.#seen < this.#sample.length ? this.#seen : Math.floor(Math.random() * (this.#seen + 1))
    if (i < this.#sample.length) this.#sample[i] = durationMs
    this.#seen++
  }

  tick = (): void => {
    const n = Math.min(this.#seen, this.#sample.length)
    const sorted = this.#sample.slice(0, n).sort()
    this.points.push({ t: Date.now(), ok: this.#ok, failed: this.#failed, p99: n > 0 ? sorted[Math.min(n - 1, Math.floor(0.99 * n))] : null })
    if (this.points.length > this.#keep) this.points.shift()
    this.#ok = this.#failed = this.#seen = 0
    const point = this.points[this.points.length - 1]
    for (const listener of this.listeners) listener(point)
  }

  run(on: boolean): void {
    if (on && !this.#ticker) this.#ticker = setInterval(this.tick, 1_000).unref()
    if (!on && this.#ticker) {
      clearInterval(this.#ticker)
      this.#ticker = undefined
    }
  }
}

export const timeline = new Timeline()

