/**
 * One server under sustained load, round after round: how its CPU a request (per thread kind), context switches a
 * request and resident memory move as its JITs and heaps settle. `bench/run.ts` compares arms in one run; this shows
 * one arm's way to its steady state, and A/Bs an environment switch or a checkout (docs/performance.md, "Round 2,
 * stop 14"). Pinned as the bench pins: the server (and the mock upstream) on one core, autocannon on the other.
 *
 *   node bench/steady.ts [--kind http|mock|node-proxy] [--accounts 8] [--sse] [--rounds 6] [--duration 5]
 *                        [--connections 50] [--root <checkout>] [--node-flags="--flag …"]
 *   AGYC_PACK_MAX=1 node bench/steady.ts --kind mock     # an environment switch reaches the server
 *
 * `http`: accounts of the http kind in front of the mock baseline; `mock`: mock accounts (zero latency, 50 deltas);
 * `node-proxy`: Node's floor for a proxy. Every account's worker is started before the first round.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { autocannon } from './load.ts'
import { processTree, readText, rssMb, stopEveryProc } from './procs.ts'
import { JSON_BODY, SSE_BODY, UNSTICKY_BODY } from './request.ts'
import { startBaseline, startNodeProxy, startOrchestrator, type Running } from './servers.ts'
import { cpuBetween, sampleThreads } from './threads.ts'

const { values } = parseArgs({
  options: {
    kind: { type: 'string', default: 'http' },
    accounts: { type: 'string', default: '8' },
    sse: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '6' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    root: { type: 'string' },
    'node-flags': { type: 'string' },
  },
})
const kind = values.kind
if (kind !== 'http' && kind !== 'mock' && kind !== 'node-proxy') throw new Error(`--kind: http, mock or node-proxy (not "${kind}")`)

/** voluntary and involuntary context switches of every thread of the process, so far */
function switches(pid: number): number {
  let n = 0
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    for (const match of readText(`/proc/${pid}/task/${tid}/status`).matchAll(/ctxt_switches:\s+(\d+)/g)) n += Number(match[1])
  }
  return n
}

const dir = mkdtempSync(join(tmpdir(), 'agyc-steady-'))
try {
  const upstream = await startBaseline(dir, 'upstream')
  const upstreamUrl = `http://127.0.0.1:${new URL(upstream.url).port}`
  let server: Running
  if (kind === 'node-proxy') server = await startNodeProxy(dir, Number(new URL(upstream.url).port))
  else {
    const session = kind === 'mock' ? { kind: 'mock', latencyMs: 0, deltas: 50 } : { kind: 'http', baseUrl: upstreamUrl }
    const started = await startOrchestrator(dir, 'steady', {
      accounts: Number(values.accounts), session, root: values.root, nodeFlags: values['node-flags']?.split(' ').filter(Boolean),
    })
    if ('skipped' in started) throw new Error(started.skipped)
    server = started
    // round-robin with affinity off reaches every account: each parked worker starts here, not in a measured round
    const ask = async (): Promise<void> => { await (await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: UNSTICKY_BODY })).arrayBuffer() }
    for (let i = 0; i < 20; i++) await Promise.all(Array.from({ length: 16 }, async () => { for (let j = 0; j < 4; j++) await ask() }))
  }
  const pid = server.proc.pid
  const tree = processTree(pid)
  process.stdout.write(`${kind}${kind === 'node-proxy' ? '' : `, ${values.accounts} account(s)`}, ${values.sse ? 'streaming' : 'non-streaming'}, c=${values.connections}, ${values.duration} s a round\n`)
  for (let round = 1; round <= Number(values.rounds); round++) {
    const before = sampleThreads(pid, tree)
    const switchesBefore = switches(pid)
    const result = await autocannon({ url: server.url, body: values.sse ? SSE_BODY : JSON_BODY }, Number(values.connections), Number(values.duration))
    const cpu = cpuBetween(pid, before, sampleThreads(pid, tree))
    const n = Math.max(1, result.requests)
    const us = (seconds: number): string => ((seconds * 1e6) / n).toFixed(0)
    process.stdout.write(`round ${round}: ${Math.round(result.rps)} req/s, p99 ${result.p99} ms, CPU µs/req ${us(cpu.main + cpu.workers + cpu.other)}` +
      ` (main ${us(cpu.main)} / workers ${us(cpu.workers)} / other ${us(cpu.other)}, V8 helpers ${us(cpu.v8)}),` +
      ` context switches/req ${((switches(pid) - switchesBefore) / n).toFixed(2)}, RSS ${Math.round(rssMb([pid]))} MB,` +
      ` errors ${result.errors + result.non2xx}\n`)
  }
  await server.stop()
  await upstream.stop()
} finally {
  await stopEveryProc()
  rmSync(dir, { recursive: true, force: true })
}
