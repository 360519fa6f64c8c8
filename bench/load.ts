/**
 * Load generators, each a separate process pinned to the load core: autocannon (its own CLI, `--json`) for
 * throughput and latency, and `ttfb.ts` for streams' time to first byte, which autocannon does not measure (its
 * latency ends with the response, and its histogram counts whole milliseconds).
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { CLOCK_TICKS, LOAD_CORE, pinned, readText } from './procs.ts'

const AUTOCANNON = fileURLToPath(new URL('../node_modules/autocannon/autocannon.js', import.meta.url))
const TTFB = fileURLToPath(new URL('./ttfb.ts', import.meta.url))

export interface Target {
  url: string
  headers?: Record<string, string>
  body: string
}

export interface LoadResult {
  requests: number
  durationS: number
  rps: number
  /** ms; whole milliseconds for autocannon */
  p50: number
  p99: number
  p999: number
  /** mean latency in ms: total time over requests, finer than autocannon's millisecond histogram */
  mean: number
  errors: number
  non2xx: number
  /** time to first byte, ms (ttfb.ts only) */
  ttfb?: { p50: number; p99: number; p999: number }
  /**
   * the load generator's own CPU over the run, in cores (1 = its one core busy all the time): near 1, the figure is
   * the load generator's ceiling, not the server's
   */
  generatorCores?: number
}

/** Runs a load generator on the load core; answers its stdout and the CPU seconds it used. */
function runJson(command: string, args: string[], timeoutMs: number): Promise<{ out: string; cpuSeconds: number }> {
  const [cmd, argv] = pinned(LOAD_CORE, command, args)
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    // its /proc entry is gone once it exits: the last reading (every 100 ms; `taskset` execs, so the pid is the
    // generator's) misses at most its last 100 ms, which are the report's printing
    let ticks = 0
    const sampler = setInterval(() => {
      const stat = readText(`/proc/${child.pid}/stat`)
      if (stat) {
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
        ticks = Number(fields[11]) + Number(fields[12])
      }
    }, 100)
    child.once('error', reject)
    child.once('exit', (code) => {
      clearTimeout(timer)
      clearInterval(sampler)
      if (code === 0) resolve({ out, cpuSeconds: ticks / CLOCK_TICKS })
      else reject(new Error(`${args[0]} exited ${code}: ${err.slice(-500)}`))
    })
  })
}

export async function autocannon(target: Target, connections: number, durationS: number): Promise<LoadResult> {
  const args = [AUTOCANNON, '--json', '-c', String(connections), '-d', String(durationS), '-m', 'POST', '-t', '10',
    '-H', 'content-type=application/json', '-H', 'anthropic-version=2023-06-01']
  for (const [k, v] of Object.entries(target.headers ?? {})) args.push('-H', `${k}=${v}`)
  args.push('-b', target.body, target.url)
  const { out, cpuSeconds } = await runJson(process.execPath, args, (durationS + 30) * 1000)
  const raw = JSON.parse(out) as {
    duration: number; errors: number; timeouts: number; non2xx: number; '2xx': number
    latency: { p50: number; p99: number; p99_9: number; mean: number }
    requests: { total: number }
  }
  const ok = raw['2xx']
  return {
    requests: ok, durationS: raw.duration, rps: ok / raw.duration,
    p50: raw.latency.p50, p99: raw.latency.p99, p999: raw.latency.p99_9, mean: raw.latency.mean,
    errors: raw.errors + raw.timeouts, non2xx: raw.non2xx, generatorCores: cpuSeconds / raw.duration,
  }
}

export async function ttfbProbe(target: Target, connections: number, durationS: number): Promise<LoadResult> {
  const args = [TTFB, '--url', target.url, '--connections', String(connections), '--duration', String(durationS), '--body', target.body]
  for (const [k, v] of Object.entries(target.headers ?? {})) args.push('--header', `${k}=${v}`)
  const { out, cpuSeconds } = await runJson(process.execPath, args, (durationS + 30) * 1000)
  const result = JSON.parse(out) as LoadResult
  return { ...result, generatorCores: cpuSeconds / result.durationS }
}
