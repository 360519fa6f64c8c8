/**
 * Latency histograms that cost one bucket search and no allocation a request: a `Series` counts into a Float64Array,
 * and `FastHistogram` hands prom-client the shape its own metrics give, formatted only at scrape time.
 */
import type { Registry } from 'prom-client'

// seconds; covers a cached 5 ms answer up to Claude Code's 600 s deadline
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]

/**
 * A histogram that counts into a Float64Array (one bucket search, no allocation) and is formatted by prom-client at
 * scrape time. One `Series` per label set, made once and kept by its owner.
 */
export class Series {
  readonly labels: Record<string, string>
  readonly counts = new Float64Array(LATENCY_BUCKETS.length + 1)
  sum = 0
  count = 0
  constructor(labels: Record<string, string>) {
    this.labels = labels
  }

  observe(seconds: number): void {
    let b = 0
    while (b < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[b]) b++
    this.counts[b]++
    this.sum += seconds
    this.count++
  }
}

interface HistogramValue { metricName: string; labels: Record<string, string>; value: number }

export class FastHistogram {
  readonly name: string
  readonly help: string
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly #series: () => Iterable<Series>

  constructor(registry: Registry, name: string, help: string, series: () => Iterable<Series>) {
    this.name = name
    this.help = help
    this.#series = series
    // registerMetric is prom-client's public hook for metrics it does not build itself
    registry.registerMetric(this as never)
  }

  /** the shape prom-client's own metrics return from `get()`, which the registry formats */
  get(): { name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: HistogramValue[] } {
    const values: HistogramValue[] = []
    for (const s of this.#series()) {
      let cumulative = 0
      for (let b = 0; b <= LATENCY_BUCKETS.length; b++) {
        cumulative += s.counts[b]
        const le = b < LATENCY_BUCKETS.length ? String(LATENCY_BUCKETS[b]) : '+Inf'
        values.push({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le }, value: cumulative })
      }
      values.push({ metricName: `${this.name}_sum`, labels: s.labels, value: s.sum })
      values.push({ metricName: `${this.name}_count`, labels: s.labels, value: s.count })
    }
    return { name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values }
  }

  reset(): void {}
}

