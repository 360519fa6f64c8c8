/**
 * What metrics cost (issue 5: "cheap on the hot path, measured"): the one call a request makes when it settles
 * (`requestSettled`), in ns of CPU per request, and a `/metrics` scrape (`registry.metrics()`), in ms of CPU, for 30 and 100
 * accounts. The orchestrator rows of `npm run bench` include the per-request cost; this isolates it.
 *
 *   node bench/metrics-cost.ts [--calls 2000000] [--scrapes 50]
 *   taskset -c 0 node bench/metrics-cost.ts     # on one core, as the bench pins the server
 *
 * The scrape here reads the per-account series only: with a running orchestrator it also reads the dispatcher's live
 * gauges (a handful of numbers per account). The 100-account round scrapes the 30-account round's series too (130).
 */
import { parseArgs } from 'node:util'
import { registry, requestSettled } from '../src/metrics.ts'

const { values } = parseArgs({ options: { calls: { type: 'string', default: '2000000' }, scrapes: { type: 'string', default: '50' } } })
const calls = Number(values.calls)
const scrapes = Number(values.scrapes)
const median = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]

for (const accounts of [30, 100]) {
  const ids = Array.from({ length: accounts }, (_, i) => `metrics-cost-${accounts}-${i}`)
  const settle = (i: number): void => {
    // the mix a real run sees: mostly 200s, a few errors, two strategies, a spread of durations
    const status = i % 50 === 0 ? 529 : 200
    requestSettled(ids[i % accounts], status, i % 7 === 0 ? 'least-recently-used' : 'round-robin',
      status === 200 ? undefined : 'AGYC_UPSTREAM_OVERLOADED', i % 13, 5 + (i % 400), 20 + (i % 2_000))
  }
  for (let i = 0; i < 200_000; i++) settle(i) // warm-up: the series exist, the JIT has settled
  // CPU time, not wall time: on a shared machine the wall clock also counts the neighbours' turns
  const cpu = process.cpuUsage()
  for (let i = 0; i < calls; i++) settle(i)
  const used = process.cpuUsage(cpu)
  const nsPerCall = ((used.user + used.system) * 1_000) / calls
  const times: number[] = []
  let bytes = 0
  for (let i = 0; i < scrapes; i++) {
    const before = process.cpuUsage()
    bytes = (await registry.metrics()).length
    const spent = process.cpuUsage(before)
    times.push((spent.user + spent.system) / 1_000)
  }
  process.stdout.write(`${accounts} accounts: requestSettled ${nsPerCall.toFixed(0)} ns/request (${calls} calls); ` +
    `/metrics scrape ${median(times).toFixed(1)} ms of CPU, median of ${scrapes} (${Math.round(bytes / 1024)} KiB)\n`)
}
