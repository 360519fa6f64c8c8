/**
 * The report: one JSON document (for comparing commits) and its markdown rendering (stdout, bench/results/, and
 * docs/performance.md). Ratios are taken within one run only: the machines are shared and absolute numbers drift.
 * Every orchestrator row is set against both yardsticks of that run: the strict baseline (arm `strict`) and the mock
 * baseline (arm `baseline`).
 */
import type { LoadResult } from './load.ts'
import type { ThreadName } from './threads.ts'

export type Section = 'json' | 'sse' | 'proxy'

export interface Cell {
  section: Section
  arm: string
  connections: number
  /** each run's result, in the order they ran */
  runs: LoadResult[]
  /** per-field medians of the runs */
  median: LoadResult
  /** server process CPU (user + system, all threads and children) per answered request, µs; median of runs */
  cpuUsPerRequest: number
  /**
   * the same split by thread (bench/threads.ts): main (HTTP + dispatcher), account workers (summed), other (GC and
   * the rest: V8's helper threads, libuv's pool, child processes), of which `v8` and `libuv` are named parts
   */
  cpuSplit: { main: number; workers: number; other: number; v8?: number; libuv?: number }
  /** the load generator: autocannon, or ttfb.ts for the time-to-first-byte runs */
  tool: 'autocannon' | 'ttfb'
}

export interface ArmStatus {
  arm: string
  status: 'ran' | 'skipped'
  reason?: string
  detail?: string
}

export interface MemoryRow {
  accounts: number
  /**
   * `default (auto)`: the default config (`dispatcher.lazyWorkers.enabled: "auto"`: mock accounts start parked, a
   * worker at their first request); `eager`: `enabled: false`, every worker starts with the orchestrator. Reports
   * before "auto" said `eager` for the default of then and `lazy` for `enabled: true`.
   */
  workers: 'default (auto)' | 'eager'

  readyMs: number
  loggedReadyMs: number | undefined
  rssIdleMb: number
  rssLoadMb: number
  /** the load during the under-load reading */
  load: string
}

export interface Target {
  what: string
  goal: string
  measured: string
  met: boolean | undefined
}

export interface ChildRow {
  variant: string
  msPerRequest: number
  p99Ms: number
  errors: number
}

export interface Report {
  version: 1
  startedAt: string
  finishedAt: string
  quick: boolean
  command: string
  options: { durationS: number; rounds: number; warmupS?: number; only: string[] | undefined; maxConcurrency: number }
  machine: { cpu: string; cores: number; node: string; kernel: string; loadAvgBefore: number[]; loadAvgAfter: number[]; memoryGb: number }
  pinning: string
  /** where the unpinned arm's server ran, or why the arm was skipped */
  unpinned: string
  arms: ArmStatus[]
  /** each server's threads by name, as counted in the CPU split (read after its last measured run) */
  threads: { arm: string; names: ThreadName[] }[]
  cells: Cell[]
  memory: MemoryRow[]
  /** what one request costs on a child-process session, cold and warm (c=1) */
  children: ChildRow[]
  targets: Target[]
  git: string
}

const f0 = (n: number): string => Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–'
const f1 = (n: number): string => Number.isFinite(n) ? n.toFixed(1) : '–'
const f2 = (n: number): string => Number.isFinite(n) ? n.toFixed(2) : '–'
const split = (c: Cell): string => c.cpuSplit ? `${f0(c.cpuSplit.main)} / ${f0(c.cpuSplit.workers)} / ${f0(c.cpuSplit.other)}` : ''
const signed = (n: number, digits = 1): string => Number.isFinite(n) ? `${n >= 0 ? '+' : ''}${n.toFixed(digits)}` : '–'

/** numbers right-aligned, text (`numeric: false`) left */
function table(head: string[], rows: string[][], numeric = true): string {
  const rule = head.map((_, i) => (i === 0 || !numeric ? '---' : '---:')).join('|')
  return [`| ${head.join(' | ')} |`, `|${rule}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n')
}

export function find(report: { readonly cells: readonly Cell[] }, section: Section, arm: string, connections: number, tool: Cell['tool'] = 'autocannon'): Cell | undefined {
  return report.cells.find((c) => c.section === section && c.arm === arm && c.connections === connections && c.tool === tool)
}

/** `vs strict` and `vs mock baseline`: the row's req/s over each yardstick's at the same level */
function yardsticks(report: Report, section: Section, c: Cell): string[] {
  const over = (arm: string): string => {
    const base = find(report, section, arm, c.connections, c.tool)
    return base ? f2(c.median.rps / base.median.rps) : '–'
  }
  return [over('strict'), over('baseline')]
}

function loadTable(report: Report, section: 'json' | 'sse'): string {
  const cells = report.cells.filter((c) => c.section === section && c.tool === 'autocannon')
  const rows = cells.map((c) => {
    const strict = find(report, section, 'strict', c.connections)
    const m = c.median
    return [
      c.arm, String(c.connections), f0(m.rps), ...yardsticks(report, section, c),
      f1(m.p50), f1(m.p99), f1(m.p999), strict ? signed(m.p99 - strict.median.p99) : '–',
      // at c=1 the time per request is 1/rps, finer than autocannon's whole-millisecond histogram
      c.connections === 1 && strict ? signed(1000 / m.rps - 1000 / strict.median.rps, 3) : '',
      f0(m.errors + m.non2xx), f0(c.cpuUsPerRequest), split(c),
    ]
  })
  return table(['arm', 'c', 'req/s', 'vs strict', 'vs mock baseline', 'p50 ms', 'p99 ms', 'p99.9 ms', 'added p99 ms vs strict',
    'added ms/req vs strict (c=1)', 'errors', 'CPU µs/req', 'main / workers / GC+other µs'], rows)
}

function proxyTable(report: Report): string {
  const rows = report.cells.filter((c) => c.section === 'proxy').map((c) => {
    const m = c.median
    const over = (arm: string, digits: (n: number) => string): string => {
      const base = find(report, 'proxy', arm, c.connections)
      return base ? digits(m.rps / base.median.rps) : '–'
    }
    const direct = find(report, 'proxy', 'direct', c.connections)
    return [
      c.arm, String(c.connections), f0(m.rps), over('direct', f2), over('nginx', f2), over('portkey', f1),
      f1(m.p50), f1(m.p99), f1(m.p999), direct ? signed(m.p99 - direct.median.p99) : '–',
      c.connections === 1 && direct ? signed(1000 / m.rps - 1000 / direct.median.rps, 3) : '',
      f0(m.errors + m.non2xx), f0(c.cpuUsPerRequest), split(c),
    ]
  })
  return table(['arm', 'c', 'req/s', '× direct', '× nginx', '× portkey', 'p50 ms', 'p99 ms', 'p99.9 ms', 'added p99 ms',
    'added ms/req (c=1)', 'errors', 'CPU µs/req', 'main / workers / GC+other µs'], rows)
}

function ttfbTable(report: Report): string {
  const cells = report.cells.filter((c) => c.tool === 'ttfb')
  const added = (c: Cell, arm: string): string => {
    const base = cells.find((b) => b.arm === arm)
    return base ? signed((c.median.ttfb?.p99 ?? NaN) - (base.median.ttfb?.p99 ?? NaN), 2) : '–'
  }
  return table(['arm', 'streams', 'req/s', 'vs strict', 'vs mock baseline', 'TTFB p50 ms', 'TTFB p99 ms', 'TTFB p99.9 ms',
    'added TTFB p99 ms vs strict', 'added TTFB p99 ms vs mock baseline', 'total p99 ms', 'errors', 'CPU µs/req', 'main / workers / GC+other µs'],
  cells.map((c) => {
    const m = c.median
    return [c.arm, String(c.connections), f0(m.rps), ...yardsticks(report, 'sse', c), f2(m.ttfb?.p50 ?? NaN), f2(m.ttfb?.p99 ?? NaN),
      f2(m.ttfb?.p999 ?? NaN), added(c, 'strict'), added(c, 'baseline'), f1(m.p99), f0(m.errors + m.non2xx), f0(c.cpuUsPerRequest), split(c)]
  }))
}

/**
 * The rows whose load generator was busy for more than 90 % of its one core: their req/s may be the generator's
 * ceiling rather than the server's (the strict baseline is the likeliest, being the fastest server).
 */
function generatorNote(cells: readonly Cell[]): string | undefined {
  const busy = cells.filter((c) => (c.median.generatorCores ?? 0) > 0.9)
  if (busy.length === 0) return undefined
  const rows = busy.map((c) => `${c.arm} c=${c.connections} (${Math.round(c.median.generatorCores! * 100)} %)`).join(', ')
  return `Load generator above 90 % of its core: ${rows}; there the figure may be the load generator's ceiling, not the server's.`
}

const KIND_LABEL = { main: 'main', workers: 'workers', v8: 'GC+other (V8 helpers)', libuv: 'GC+other (libuv pool)', other: 'GC+other' } as const

function threadsTable(report: Report): string {
  return table(['server', 'threads: name ×count → column'], report.threads.map((t) => [
    t.arm, t.names.map((n) => `\`${n.comm}\` ×${n.count} → ${KIND_LABEL[n.kind]}`).join(' · '),
  ]), false)
}

export function toMarkdown(report: Report): string {
  const m = report.machine
  const out: string[] = []
  out.push(`Run ${report.startedAt}${report.quick ? ' (**--quick**: smoke run, numbers meaningless)' : ''} · commit ${report.git}`)
  out.push('')
  out.push(`Machine: ${m.cpu}, ${m.cores} cores, ${f0(m.memoryGb)} GB, Linux ${m.kernel}, Node ${m.node}; load average before ${m.loadAvgBefore.map(f2).join(' / ')}, after ${m.loadAvgAfter.map(f2).join(' / ')}.`)
  out.push(`Pinning: ${report.pinning}. Unpinned arm: ${report.unpinned}.`)
  out.push(`Yardsticks: "vs strict" is the row's req/s over the strict baseline's (bench/strict-baseline.ts: read the body, one JSON.parse, replayed bytes), "vs mock baseline" over the mock baseline's (bench/baseline.ts: the mock session's work per request), both at the same level in this run. CPU per request is split by thread: main / workers (summed) / GC+other (V8's helper threads, libuv's pool; see Threads).`)
  out.push(`Each figure is the median of ${report.options.rounds} alternating run(s) of ${report.options.durationS} s${report.options.warmupS ? `, after ${report.options.warmupS} s of unrecorded load (c=50) per server and body` : ''}; accounts have maxConcurrency ${report.options.maxConcurrency}, mock session with zero latency; per-request log lines go to a file.`)
  out.push(`Command: \`${report.command}\``)
  out.push('')
  if (report.targets.length > 0) {
    out.push('### Targets')
    out.push('')
    out.push(table(['target', 'goal', 'measured', 'met'], report.targets.map((t) => [t.what, t.goal, t.measured, t.met === undefined ? 'n/a' : t.met ? 'yes' : '**no**']), false))
    out.push('')
  }
  if (report.cells.some((c) => c.section === 'json')) {
    out.push('### Non-streaming (`POST /v1/messages`, one JSON message)')
    out.push('')
    out.push(loadTable(report, 'json'))
    out.push('')
    const note = generatorNote(report.cells.filter((c) => c.section === 'json'))
    if (note) out.push(note, '')
  }
  if (report.cells.some((c) => c.section === 'sse' && c.tool === 'autocannon')) {
    out.push('### Streaming (50 text deltas, SSE)')
    out.push('')
    out.push(loadTable(report, 'sse'))
    out.push('')
    const note = generatorNote(report.cells.filter((c) => c.section === 'sse' && c.tool === 'autocannon'))
    if (note) out.push(note, '')
  }
  if (report.cells.some((c) => c.tool === 'ttfb')) {
    out.push('### Streaming: time to first byte (ttfb.ts, concurrent streams)')
    out.push('')
    out.push(ttfbTable(report))
    out.push('')
    const note = generatorNote(report.cells.filter((c) => c.tool === 'ttfb'))
    if (note) out.push(note, '')
  }
  if (report.cells.some((c) => c.section === 'proxy')) {
    out.push('### Proxy case (non-streaming, each in front of the same mock baseline; the upstream runs on the server core too)')
    out.push('')
    out.push(proxyTable(report))
    out.push('')
  }
  if (report.memory.length > 0) {
    out.push('### Memory and start-up')
    out.push('')
    out.push(table(['accounts', 'workers', 'ready (spawn → listening) ms', 'ready as logged ms', 'RSS idle MB', 'RSS under load MB', 'load'],
      report.memory.map((r) => [String(r.accounts), r.workers ?? 'eager', f0(r.readyMs), r.loggedReadyMs === undefined ? '–' : f0(r.loggedReadyMs), f0(r.rssIdleMb), f0(r.rssLoadMb), r.load])))
    out.push('')
  }
  if (report.children.length > 0) {
    out.push('### Child-process sessions: a request cold and warm (c=1, the fixture agent)')
    out.push('')
    out.push(table(['session', 'ms per request', 'p99 ms', 'errors'],
      report.children.map((r) => [r.variant, r.msPerRequest.toFixed(1), f0(r.p99Ms), String(r.errors)])))
    out.push('')
  }
  if (report.threads.length > 0) {
    out.push('### Threads (how the CPU split counts them; bench/threads.ts)')
    out.push('')
    out.push(threadsTable(report))
    out.push('')
  }
  out.push('### Arms')
  out.push('')
  out.push(table(['arm', 'status', 'note'], report.arms.map((a) => [a.arm, a.status, a.reason ?? a.detail ?? '']), false))
  out.push('')
  return out.join('\n')
}
