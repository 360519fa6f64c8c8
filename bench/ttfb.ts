/**
 * A load generator for streams: `connections` keep-alive connections each send one request after another for
 * `duration` seconds and time the first body byte and the end of each answer (performance.now(), sub-millisecond).
 * Prints one JSON line (a `LoadResult`). Run in its own process, pinned to the load core, like autocannon.
 */
import { parseArgs } from 'node:util'
import { Pool } from 'undici'

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    connections: { type: 'string', default: '100' },
    duration: { type: 'string', default: '5' },
    body: { type: 'string' },
    header: { type: 'string', multiple: true, default: [] },
  },
})
const url = new URL(values.url!)
const connections = Number(values.connections)
const durationMs = Number(values.duration) * 1000
const headers: Record<string, string> = { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }
for (const h of values.header) {
  const i = h.indexOf('=')
  headers[h.slice(0, i)] = h.slice(i + 1)
}

const pool = new Pool(url.origin, { connections, pipelining: 1 })
const ttfb: number[] = []
const total: number[] = []
let errors = 0
let non2xx = 0
const start = performance.now()
const stopAt = start + durationMs

async function loop(): Promise<void> {
  while (performance.now() < stopAt) {
    const t0 = performance.now()
    try {
      const res = await pool.request({ path: url.pathname, method: 'POST', headers, body: values.body })
      let first = -1
      for await (const _chunk of res.body) if (first < 0) first = performance.now() - t0
      if (res.statusCode >= 200 && res.statusCode < 300) {
        ttfb.push(first)
        total.push(performance.now() - t0)
      } else {
        non2xx++
      }
    } catch {
      errors++
    }
  }
}

await Promise.all(Array.from({ length: connections }, loop))
const elapsedS = (performance.now() - start) / 1000
await pool.close()

const pct = (sorted: number[], p: number): number => sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]
ttfb.sort((a, b) => a - b)
total.sort((a, b) => a - b)
const mean = total.reduce((s, x) => s + x, 0) / Math.max(1, total.length)
process.stdout.write(`${JSON.stringify({
  requests: total.length, durationS: elapsedS, rps: total.length / elapsedS,
  p50: pct(total, 0.5), p99: pct(total, 0.99), p999: pct(total, 0.999), mean, errors, non2xx,
  ttfb: { p50: pct(ttfb, 0.5), p99: pct(ttfb, 0.99), p999: pct(ttfb, 0.999) },
})}\n`)
