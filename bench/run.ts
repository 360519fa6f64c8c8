/**
 * `npm run bench`: the two bare baselines (strict, mock), the orchestrator (mock accounts) and the proxies, measured
 * in one run on loopback, each server and each load generator a separate process pinned to its own core. Prints a
 * markdown report, writes it with its JSON under bench/results/, and (full runs) its tables into docs/performance.md,
 * between the bench markers.
 *
 *   node bench/run.ts [--quick] [--duration S] [--rounds N] [--warmup S] [--only arm,arm] [--cpu-prof] [--out DIR]
 *                     [--docs FILE] [--no-docs]   (where the tables go: docs/performance.md after a full run; a
 *                                                  --docs FILE is written by any run, quick or narrowed)
 *                     [--connections 1,50] [--sections json,sse,ttfb,proxy]   (narrow a run down, e.g. to profile one case)
 *                     [--against DIR]   (each orchestrator arm also runs from another checkout, e.g. a worktree of main:
 *                                        two commits compared in one run, on the same machine state)
 *
 * Arms: strict, baseline, orch-1, orch-8, orch-30, orch-8-unpinned, http-proxy, http-proxy-1, node-proxy, nginx, portkey, memory-30,
 * memory-100, exec. The two baselines run whenever the mock section does: every orchestrator row is set against both.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { writeTables } from './docs-writer.ts'
import { autocannon, ttfbProbe, type LoadResult, type Target as LoadTarget } from './load.ts'
import { LOAD_CORE, pinningUnavailable, rssMb, stopEveryProc, unpinnedCores } from './procs.ts'
import { toMarkdown, type ArmStatus, type Cell, type ChildRow, type MemoryRow, type Report, type Section } from './report.ts'
import { CHAT_JSON_BODY, CHAT_SSE_BODY, JSON_BODY, SSE_BODY, STICKY_BODY, UNSTICKY_BODY } from './request.ts'
import {
  BENCH_MAX_CONCURRENCY, startBaseline, startNginx, startNodeProxy, startOrchestrator, startPortkey, type Running, type Started,
} from './servers.ts'
import { judge } from './targets.ts'
import { cpuBetween, sampleThreads, threadNames, type ThreadCpu, type ThreadName } from './threads.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

export const ARMS = [
  'strict', 'baseline', 'orch-1', 'orch-8', 'orch-30', 'orch-8-unpinned', 'http-proxy', 'http-proxy-1', 'node-proxy', 'nginx', 'portkey', 'memory-30', 'memory-100',
  'exec',
] as const
type Arm = (typeof ARMS)[number]

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    rounds: { type: 'string' },
    warmup: { type: 'string' },
    only: { type: 'string' },
    out: { type: 'string', default: join(ROOT, 'bench/results') },
    connections: { type: 'string' },
    sections: { type: 'string' },
    against: { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
    docs: { type: 'string' },
    'no-docs': { type: 'boolean', default: false },
    // the tables used to go into README.md: the old switch still keeps a run from writing them
    'no-readme': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
})
if (values.help) {
  process.stdout.write(`usage: node bench/run.ts [--quick] [--duration S] [--rounds N] [--warmup S] [--only ${ARMS.join(',')}] [--cpu-prof] [--out DIR] [--docs FILE] [--no-docs]\n`)
  process.exit(0)
}

const quick = values.quick
const durationS = Math.max(1, Number(values.duration ?? (quick ? 1 : 5)))
const rounds = Math.max(1, Number(values.rounds ?? (quick ? 1 : 3)))
// seconds of unrecorded load per server and body before its rounds (c=50): the steady state a long-running server is
// in. Eight workers each JIT their own code and size their own heap, from an eighth of the requests: the proxy arm's
// CPU a request was still falling after a minute (docs/performance.md, "Round 2, stop 14")
const warmupS = Math.max(0, Number(values.warmup ?? (quick ? 0 : 10)))
const only = values.only?.split(',').map((s) => s.trim()).filter(Boolean)
for (const arm of only ?? []) {
  if (!(ARMS as readonly string[]).includes(arm)) {
    process.stderr.write(`--only: unknown arm "${arm}" (expected ${ARMS.join(', ')})\n`)
    process.exit(2)
  }
}
const selected = (arm: Arm): boolean => !only || only.includes(arm)

// what each section measures; --quick keeps every arm but one level and short runs (a smoke run, no thresholds)
const LEVELS = quick
  ? { json: [16], sse: [16], streams: 32, proxy: [16], memory: [2, 4] }
  : { json: [1, 16, 50], sse: [1, 16, 50, 100], streams: 100, proxy: [1, 16, 50], memory: [30, 100] }
// --connections 50 and --sections json,ttfb narrow a run down, for profiling one case
const onlyLevels = values.connections?.split(',').map(Number)
const sections = values.sections?.split(',')
for (const key of ['json', 'sse', 'proxy'] as const) {
  if (onlyLevels) LEVELS[key] = LEVELS[key].filter((c) => onlyLevels.includes(c))
  if (sections && !sections.includes(key)) LEVELS[key] = []
}
const ttfbWanted = !sections || sections.includes('ttfb')

const MOCK = { kind: 'mock', latencyMs: 0, deltas: 50 }

const dir = mkdtempSync(join(tmpdir(), 'agyc-bench-'))
const profileDir = join(values.out, 'profiles')
const live = new Set<Running>()
const arms = new Map<Arm, ArmStatus>()
const cells: Cell[] = []
const memory: MemoryRow[] = []
const children: ChildRow[] = []
/** each server's thread names, from its last measured run */
const threads = new Map<string, ThreadName[]>()
const unpinned = unpinnedCores()
const note = (arm: Arm, status: ArmStatus['status'], text?: string): void => {
  arms.set(arm, status === 'skipped' ? { arm, status, reason: text } : { arm, status, detail: text })
}
const say = (line: string): void => { process.stderr.write(`bench: ${line}\n`) }

async function stopAll(): Promise<void> {
  await Promise.all([...live].map((s) => s.stop()))
  live.clear()
}
// interrupted (Ctrl-C, or SIGTERM from `agyc bench`'s parent or a CI timeout): stop what runs and leave no scratch
// directory behind; 128 + the signal's number, as a shell reports it
const interrupted = (code: number) => (): void => {
  // the servers that are up, then any process still starting (not yet among them)
  void stopAll().then(stopEveryProc).finally(() => {
    rmSync(dir, { recursive: true, force: true })
    process.exit(code)
  })
}
process.once('SIGINT', interrupted(130))
process.once('SIGTERM', interrupted(143))

function keep(started: Started): Running | undefined {
  if ('skipped' in started) return undefined
  live.add(started)
  return started
}

async function stop(server: Running | undefined): Promise<void> {
  if (!server) return
  await server.stop()
  live.delete(server)
}

const nodeFlags = (name: string): string[] => values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, name)}`] : []

// ── measuring ───────────────────────────────────────────────────────────────────────────────────────────────────
interface Plan {
  section: Section
  arm: string
  connections: number
  server: Running
  body: string
  tool: Cell['tool']
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

function medianResult(runs: LoadResult[]): LoadResult {
  const pick = (f: (r: LoadResult) => number): number => median(runs.map(f))
  const result: LoadResult = {
    requests: pick((r) => r.requests), durationS: pick((r) => r.durationS), rps: pick((r) => r.rps),
    p50: pick((r) => r.p50), p99: pick((r) => r.p99), p999: pick((r) => r.p999), mean: pick((r) => r.mean),
    errors: pick((r) => r.errors), non2xx: pick((r) => r.non2xx),
  }
  if (runs.every((r) => r.generatorCores !== undefined)) result.generatorCores = pick((r) => r.generatorCores!)
  if (runs.every((r) => r.ttfb)) result.ttfb = { p50: pick((r) => r.ttfb!.p50), p99: pick((r) => r.ttfb!.p99), p999: pick((r) => r.ttfb!.p999) }
  return result
}

async function once(plan: Plan, seconds: number): Promise<{ result: LoadResult; cpu: ThreadCpu }> {
  const target: LoadTarget = { url: plan.server.url, headers: plan.server.headers, body: plan.body }
  const pid = plan.server.proc.pid
  const pids = plan.server.pids()
  const before = sampleThreads(pid, pids)
  const result = plan.tool === 'ttfb' ? await ttfbProbe(target, plan.connections, seconds) : await autocannon(target, plan.connections, seconds)
  const after = sampleThreads(pid, pids)
  threads.set(plan.server.name, threadNames(pid, after))
  const used = cpuBetween(pid, before, after)
  const per = (k: keyof ThreadCpu): number => result.requests > 0 ? (used[k] * 1e6) / result.requests : NaN
  return { result, cpu: { main: per('main'), workers: per('workers'), other: per('other'), v8: per('v8'), libuv: per('libuv') } }
}

const total = (c: ThreadCpu): number => c.main + c.workers + c.other

/** Rounds over all plans, every other round in reverse, so slow drift of the shared machine hits every arm alike. */
async function measure(plans: Plan[]): Promise<void> {
  const runs = new Map<Plan, { results: LoadResult[]; cpu: ThreadCpu[] }>(plans.map((p) => [p, { results: [], cpu: [] }]))
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? plans : [...plans].reverse()
    for (const plan of order) {
      const { result, cpu } = await once(plan, durationS)
      runs.get(plan)!.results.push(result)
      runs.get(plan)!.cpu.push(cpu)
      say(`round ${round + 1}/${rounds} ${plan.section} ${plan.arm} c=${plan.connections}${plan.tool === 'ttfb' ? ' (ttfb)' : ''}: ${Math.round(result.rps)} req/s, p99 ${result.p99.toFixed(1)} ms, ${result.errors + result.non2xx} errors, ${Math.round(total(cpu))} µs CPU/req`)
    }
  }
  for (const plan of plans) {
    const { results, cpu } = runs.get(plan)!
    const ok = cpu.filter((c) => Number.isFinite(total(c)))
    const pick = (f: (c: ThreadCpu) => number): number => ok.length ? median(ok.map(f)) : NaN
    cells.push({
      section: plan.section, arm: plan.arm, connections: plan.connections, runs: results, median: medianResult(results),
      cpuUsPerRequest: pick(total), tool: plan.tool,
      cpuSplit: { main: pick((c) => c.main), workers: pick((c) => c.workers), other: pick((c) => c.other), v8: pick((c) => c.v8), libuv: pick((c) => c.libuv) },
    })
  }
}

/**
 * An unrecorded run per server and body (`--warmup`, c=50): the JIT, the heaps and the connection pools reach their
 * steady state before anything counts. First, every orchestrator account gets its worker (`wake`), also in a quick
 * run: a worker's start is not the request path.
 */
async function warm(servers: Running[], bodies: string[]): Promise<void> {
  for (const server of servers) await wake(server)
  if (warmupS === 0) return
  for (const server of servers) for (const body of bodies) await once({ section: 'json', arm: server.name, connections: 50, server, body, tool: 'autocannon' }, warmupS)
}

/**
 * Under the default config (`lazyWorkers: "auto"`) mock and http accounts start parked: a worker starts at an
 * account's first request (~60 ms of CPU, 8 at a time). A timed warm-up run might not reach every account (the
 * "one sticky session" body stays home, and a parked account is passed over while 8 others are starting), and the
 * rest would start their workers inside a measured run. So: rounds of requests
 * with affinity off, 16 at a time and each awaited, which round-robin hands to each account in turn (a parked one is
 * passed over only while 8 others are starting, and reached on a later turn), until `/admin/accounts` reports no
 * account parked. Not autocannon: a timed run cancels what is still waiting for a worker when its time is up.
 */
async function wake(server: Running): Promise<void> {
  const accountsUrl = server.accountsUrl
  if (accountsUrl === undefined) return
  const parked = async (): Promise<number> => {
    const body = await (await fetch(accountsUrl)).json() as { accounts: { parked?: boolean }[] }
    return body.accounts.filter((a) => a.parked === true).length
  }
  const ask = async (): Promise<void> => {
    const res = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json', ...server.headers }, body: UNSTICKY_BODY })
    await res.arrayBuffer()
  }
  const before = await parked()
  let left = before
  let sent = 0
  const deadline = performance.now() + 120_000
  while (left > 0 && performance.now() < deadline) {
    await Promise.all(Array.from({ length: 16 }, async () => { for (let i = 0; i < 4; i++) await ask() }))
    sent += 64
    left = await parked()
  }
  if (left > 0) say(`${server.name}: ${left} account(s) still parked after the warm-up: their worker starts are measured`)
  else if (before > 0) say(`${server.name}: ${before} parked account(s) started their workers (${sent} warm-up requests)`)
}

// ── sections ────────────────────────────────────────────────────────────────────────────────────────────────────
async function mockSection(): Promise<void> {
  const orchArms = (['orch-1', 'orch-8', 'orch-30'] as const).filter(selected)
  const wantUnpinned = selected('orch-8-unpinned')
  if (orchArms.length === 0 && !wantUnpinned && !selected('baseline') && !selected('strict')) return
  if (wantUnpinned && 'skipped' in unpinned) {
    note('orch-8-unpinned', 'skipped', unpinned.skipped)
    say(`orch-8-unpinned skipped: ${unpinned.skipped}`)
  }
  const unpinnedCoresList = wantUnpinned && 'cores' in unpinned ? unpinned.cores : undefined
  // started together: start-up is measured on its own in the memory section. Both yardsticks always: every
  // orchestrator row is set against each of them.
  const [strictStarted, baselineStarted, unpinnedStarted, ...orchStarted] = await Promise.all([
    startBaseline(dir, 'strict', 'strict'),
    startBaseline(dir),
    unpinnedCoresList === undefined
      ? undefined
      : startOrchestrator(dir, 'orch-8 unpinned', { accounts: 8, session: MOCK, nodeFlags: nodeFlags('orch-8-unpinned'), cores: unpinnedCoresList }),
    ...orchArms.map((arm) => startOrchestrator(dir, arm, { accounts: Number(arm.slice(5)), session: MOCK, nodeFlags: nodeFlags(arm) })),
  ])
  const strict = keep(strictStarted)!
  const baseline = keep(baselineStarted)!
  note('strict', 'ran', 'bench/strict-baseline.ts: read the body, one JSON.parse, replayed bytes')
  note('baseline', 'ran', "bench/baseline.ts: the mock session's work per request (the mock baseline)")
  const servers: Running[] = [strict, baseline]
  orchArms.forEach((arm, i) => {
    const server = keep(orchStarted[i])
    if (!server) {
      note(arm, 'skipped', (orchStarted[i] as { skipped: string }).skipped)
      return
    }
    servers.push(server)
    note(arm, 'ran', `${arm.slice(5)} mock account(s)${values.against ? `; "(against)": the same from ${values.against}` : ''}`)
  })
  const unpinnedServer = unpinnedStarted === undefined ? undefined : keep(unpinnedStarted)
  if (unpinnedStarted !== undefined) {
    if (unpinnedServer) note('orch-8-unpinned', 'ran', `8 mock accounts on cores ${unpinnedCoresList} (all but the load generator's core ${LOAD_CORE})`)
    else note('orch-8-unpinned', 'skipped', (unpinnedStarted as { skipped: string }).skipped)
  }
  if (values.against) {
    const against = await Promise.all(orchArms.map((arm) => startOrchestrator(dir, `${arm} (against)`, { accounts: Number(arm.slice(5)), session: MOCK, nodeFlags: nodeFlags(`${arm}-against`), root: values.against })))
    for (const started of against) {
      const server = keep(started)
      if (server) servers.push(server)
      else say(`--against: ${(started as { skipped: string }).skipped}`)
    }
  }
  await warm(unpinnedServer ? [...servers, unpinnedServer] : servers, [JSON_BODY, SSE_BODY])
  const plans: Plan[] = []
  const add = (section: Section, levels: number[], server: Running, body: string): void => {
    for (const connections of levels) plans.push({ section, arm: server.name, connections, server, body, tool: 'autocannon' })
  }
  // the unpinned arm at the levels where more than one core can help (c=1 has one request at a time)
  const busy = (levels: number[]): number[] => levels.filter((c) => c > 1)
  for (const connections of LEVELS.json) {
    for (const server of servers) add('json', [connections], server, JSON_BODY)
    if (unpinnedServer) add('json', busy([connections]), unpinnedServer, JSON_BODY)
  }
  for (const connections of LEVELS.sse) {
    for (const server of servers) add('sse', [connections], server, SSE_BODY)
    if (unpinnedServer) add('sse', busy([connections]), unpinnedServer, SSE_BODY)
  }
  const orch8 = servers.find((s) => s.name === 'orch-8') ?? servers.find((s) => s !== strict && s !== baseline)
  const orch8Against = servers.find((s) => s.name === 'orch-8 (against)')
  if (orch8 && ttfbWanted) {
    for (const server of [strict, baseline, orch8, ...(orch8Against ? [orch8Against] : []), ...(unpinnedServer ? [unpinnedServer] : [])]) {
      plans.push({ section: 'sse', arm: server.name, connections: LEVELS.streams, server, body: SSE_BODY, tool: 'ttfb' })
    }
  }
  if (orch8 && orch8.url.endsWith('/v1/messages')) {
    // the same mock accounts through the Chat Completions door: what translating in and framing out costs
    const chat: Running = { ...orch8, name: `${orch8.name} chat completions`, url: orch8.url.replace(/\/v1\/messages$/, '/v1/chat/completions') }
    for (const connections of LEVELS.json) plans.push({ section: 'json', arm: chat.name, connections, server: chat, body: CHAT_JSON_BODY, tool: 'autocannon' })
    for (const connections of LEVELS.sse) plans.push({ section: 'sse', arm: chat.name, connections, server: chat, body: CHAT_SSE_BODY, tool: 'autocannon' })
  }
  if (orch8) {
    // affinity on (the default) is the plain orch-8 row; these two show its cost and a conversation that goes home
    for (const connections of LEVELS.json) {
      plans.push({ section: 'json', arm: `${orch8.name} affinity off`, connections, server: orch8, body: UNSTICKY_BODY, tool: 'autocannon' })
      plans.push({ section: 'json', arm: `${orch8.name} one sticky session`, connections, server: orch8, body: STICKY_BODY, tool: 'autocannon' })
    }
  }
  await measure(plans)
  for (const server of servers) await stop(server)
  await stop(unpinnedServer)
}

async function proxySection(): Promise<void> {
  const wanted = (['http-proxy', 'http-proxy-1', 'node-proxy', 'nginx', 'portkey'] as const).filter(selected)
  if (wanted.length === 0) return
  const upstream = keep(await startBaseline(dir, 'upstream'))!
  const upstreamPort = Number(new URL(upstream.url).port)
  const direct: Running = { ...upstream, name: 'direct' }
  const servers: Running[] = [direct]
  for (const arm of wanted) {
    let started: Started
    if (arm === 'http-proxy' || arm === 'http-proxy-1') {
      // eight accounts (eight keys pooled in front of one upstream: eight workers, eight connection pools), and one
      // (a gateway in front of one key)
      const accounts = arm === 'http-proxy' ? 8 : 1
      started = await startOrchestrator(dir, arm, { accounts, session: { kind: 'http', baseUrl: `http://127.0.0.1:${upstreamPort}` }, nodeFlags: nodeFlags(arm) })
    } else if (arm === 'node-proxy') {
      started = await startNodeProxy(dir, upstreamPort)
    } else if (arm === 'nginx') {
      started = await startNginx(dir, upstreamPort)
    } else {
      started = await startPortkey(dir, upstreamPort)
    }
    const server = keep(started)
    if (!server) {
      note(arm, 'skipped', `not available: ${(started as { skipped: string }).skipped}`)
      say(`${arm} skipped: ${(started as { skipped: string }).skipped}`)
      continue
    }
    // one request first: a proxy that answers errors would measure nothing (after the http accounts' workers start:
    // parked, they could outlast the probe's second)
    await wake(server)
    const probe = await autocannon({ url: server.url, headers: server.headers, body: JSON_BODY }, 1, 1)
    if (probe.requests === 0) {
      note(arm, 'skipped', `not available: started, but answered no request with a 2xx (${probe.non2xx} non-2xx, ${probe.errors} errors)`)
      await stop(server)
      continue
    }
    servers.push(server)
    note(arm, 'ran', arm === 'http-proxy' ? '8 accounts of session kind http' : arm === 'http-proxy-1' ? '1 account of session kind http' : undefined)
  }
  if (servers.length > 1) {
    await warm(servers, [JSON_BODY])
    const plans: Plan[] = []
    for (const connections of LEVELS.proxy) for (const server of servers) plans.push({ section: 'proxy', arm: server.name, connections, server, body: JSON_BODY, tool: 'autocannon' })
    await measure(plans)
  }
  for (const server of servers.slice(1)) await stop(server)
  await stop(upstream)
}

async function memorySection(): Promise<void> {
  const wanted = (['memory-30', 'memory-100'] as const).filter(selected)
  for (const arm of wanted) {
    const accounts = LEVELS.memory[arm === 'memory-30' ? 0 : 1]
    // the default (lazyWorkers "auto": mock accounts are parked, a worker per account that has had a request; idle,
    // none is started, under load as many as the load reaches), then every worker started with the orchestrator
    for (const workers of ['default (auto)', 'eager'] as const) {
      const extra = workers === 'eager' ? { dispatcher: { lazyWorkers: { enabled: false } } } : undefined
      const started = await startOrchestrator(dir, `mem-${accounts}-${workers === 'eager' ? 'eager' : 'default'}`, { accounts, session: MOCK, extra })
      const server = keep(started)
      if (!server) {
        note(arm, 'skipped', (started as { skipped: string }).skipped)
        break
      }
      await new Promise((r) => setTimeout(r, quick ? 300 : 2_000)) // the workers' first heartbeats and GC settle
      const pids = server.pids()
      const rssIdleMb = rssMb(pids)
      let rssLoadMb = rssIdleMb
      const sampler = setInterval(() => { rssLoadMb = Math.max(rssLoadMb, rssMb(pids)) }, 100)
      const load = await autocannon({ url: server.url, body: JSON_BODY }, 50, durationS)
      clearInterval(sampler)
      memory.push({ accounts, workers, readyMs: server.readyMs, loggedReadyMs: server.loggedReadyMs, rssIdleMb, rssLoadMb, load: `c=50 non-streaming, ${Math.round(load.rps)} req/s` })
      note(arm, 'ran', `${accounts} accounts${quick ? ' (--quick: fewer accounts)' : ''}`)
      say(`${accounts} accounts, ${workers} workers: ready ${Math.round(server.readyMs)} ms, RSS idle ${Math.round(rssIdleMb)} MB, under load ${Math.round(rssLoadMb)} MB`)
      await stop(server)
    }
  }
}

/**
 * What a request costs on a child-process session (issue 3): `exec` cold (a process started per request), `exec`
 * warm (`prewarm`: a process already waiting on stdin) and `stdio` (one long-lived process), one request at a time.
 */
async function execArm(): Promise<void> {
  if (!selected('exec')) return
  const agent = (name: string) => join(ROOT, 'test/fixtures', name)
  const variants = [
    { variant: 'exec, cold (a process per request)', session: { kind: 'exec', command: 'node', args: [agent('exec-agent.mjs'), '--output', 'events'], output: 'events' } },
    { variant: 'exec, warm (prewarm: 2)', session: { kind: 'exec', command: 'node', args: [agent('exec-agent.mjs'), '--output', 'events'], output: 'events', prewarm: 2 } },
    { variant: 'stdio (one long-lived process)', session: { kind: 'stdio', command: 'node', args: [agent('stdio-agent.mjs')] } },
  ]
  const ran: string[] = []
  for (const [i, { variant, session }] of variants.entries()) {
    const started = await startOrchestrator(dir, `child-${i}`, { accounts: 1, session })
    const server = keep(started)
    if (!server) {
      note('exec', 'skipped', (started as { skipped: string }).skipped)
      return
    }
    await autocannon({ url: server.url, body: JSON_BODY }, 1, 1) // the first child, the JIT
    const load = await autocannon({ url: server.url, body: JSON_BODY }, 1, durationS)
    children.push({ variant, msPerRequest: load.rps > 0 ? 1000 / load.rps : Number.NaN, p99Ms: load.p99, errors: load.errors + load.non2xx })
    say(`${variant}: ${(1000 / load.rps).toFixed(1)} ms per request`)
    ran.push(variant)
    await stop(server)
  }
  note('exec', 'ran', ran.join('; '))
}

function gitDescribe(): string {
  try {
    const hash = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim()
    return dirty ? `${hash} (with uncommitted changes)` : hash
  } catch {
    return 'unknown'
  }
}

// ── main ────────────────────────────────────────────────────────────────────────────────────────────────────────
const startedAt = new Date().toISOString()
const loadAvgBefore = loadavg()
say(`${quick ? 'quick smoke run' : 'full run'}: ${durationS} s per run, ${rounds} round(s), ${warmupS} s of warm-up per server and body; pinning: ${pinningUnavailable ? `off (${pinningUnavailable})` : 'on'}; scratch ${dir}`)
try {
  await mockSection()
  await proxySection()
  await memorySection()
  await execArm()
} finally {
  await stopAll()
}
for (const arm of ARMS) if (!arms.has(arm)) arms.set(arm, { arm, status: 'skipped', reason: 'not selected (--only)' })

const report: Report = {
  version: 1,
  startedAt,
  finishedAt: new Date().toISOString(),
  quick,
  command: `node bench/run.ts ${process.argv.slice(2).join(' ')}`.trim(),
  options: { durationS, rounds, warmupS, only, maxConcurrency: BENCH_MAX_CONCURRENCY },
  machine: {
    cpu: cpus()[0]?.model.trim() ?? 'unknown', cores: cpus().length, node: process.version, kernel: release(),
    loadAvgBefore, loadAvgAfter: loadavg(), memoryGb: totalmem() / 2 ** 30,
  },
  pinning: pinningUnavailable
    ? `off: ${pinningUnavailable}; server and load generator share the cores`
    : `taskset: servers (and the proxies' upstream) on core 0, load generators on core 1`,
  unpinned: 'cores' in unpinned
    ? `orch-8 unpinned on cores ${unpinned.cores} (all but the load generator's core ${LOAD_CORE}), against the same pinned single-core baselines`
    : `skipped: ${unpinned.skipped}`,
  arms: ARMS.map((a) => arms.get(a)!),
  threads: [...threads].map(([arm, names]) => ({ arm, names })),
  cells,
  memory,
  children,
  targets: quick ? [] : judge({ cells, memory, streams: LEVELS.streams, unpinnedSkipped: arms.get('orch-8-unpinned')?.reason }),
  git: gitDescribe(),
}

const markdown = toMarkdown(report)
process.stdout.write(`${markdown}\n`)
mkdirSync(values.out, { recursive: true })
const stamp = startedAt.replace(/[:.]/g, '-')
for (const name of [stamp, 'latest']) {
  writeFileSync(join(values.out, `${name}.json`), `${JSON.stringify(report, null, 2)}\n`)
  writeFileSync(join(values.out, `${name}.md`), `${markdown}\n`)
}
say(`written: ${join(values.out, `${stamp}.json`)} and .md${values['cpu-prof'] ? `; CPU profiles under ${profileDir}` : ''}`)
// docs/performance.md carries the latest full run; a --docs FILE is written by any run (the smoke test's check)
const docsFile = values.docs ?? (!quick && !only && !onlyLevels && !sections && !values['no-docs'] && !values['no-readme'] ? join(ROOT, 'docs/performance.md') : undefined)
if (docsFile !== undefined) {
  const m = report.machine
  say(writeTables(docsFile, markdown, `${m.cpu}, ${m.cores} cores, ${Math.round(m.memoryGb)} GB, Linux ${m.kernel}, Node ${m.node}`))
}
rmSync(dir, { recursive: true, force: true })
