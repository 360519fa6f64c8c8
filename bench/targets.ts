/**
 * The targets, judged in full runs only (a quick run has no thresholds). Issue 18 judges the orchestrator against
 * the strict baseline; every measured ratio also shows the mock baseline's, the yardstick of the earlier reports.
 */
import { find, type Cell, type MemoryRow, type Section, type Target } from './report.ts'

export interface TargetInputs {
  cells: readonly Cell[]
  memory: readonly MemoryRow[]
  /** how many concurrent streams the TTFB probe ran */
  streams: number
  /** the unpinned arm's skip reason, when it did not run */
  unpinnedSkipped: string | undefined
}

const ratioText = (strict: number | undefined, mock: number | undefined): string =>
  `${strict === undefined ? '–' : strict.toFixed(2)}× strict · ${mock === undefined ? '–' : mock.toFixed(2)}× mock baseline`
const msText = (strict: number | undefined, mock: number | undefined, digits: number): string => {
  const f = (v: number | undefined): string => v === undefined ? '–' : `${v >= 0 ? '+' : ''}${v.toFixed(digits)} ms`
  return `${f(strict)} vs strict · ${f(mock)} vs mock baseline`
}

export function judge({ cells, memory, streams, unpinnedSkipped }: TargetInputs): Target[] {
  const out: Target[] = []
  const r = { cells }
  const rps = (section: Section, arm: string, c: number, tool: Cell['tool'] = 'autocannon'): number | undefined =>
    find(r, section, arm, c, tool)?.median.rps
  const over = (a: number | undefined, b: number | undefined): number | undefined => a !== undefined && b !== undefined ? a / b : undefined
  const minus = (a: number | undefined, b: number | undefined): number | undefined => a !== undefined && b !== undefined ? a - b : undefined
  /** a ratio target: judged against the strict baseline, shown against both */
  const ratio = (what: string, goal: number, section: Section, arm: string, c: number): void => {
    const strict = over(rps(section, arm, c), rps(section, 'strict', c))
    const mock = over(rps(section, arm, c), rps(section, 'baseline', c))
    out.push({ what, goal: `≥ ${goal}× strict`, measured: ratioText(strict, mock), met: strict === undefined ? undefined : strict >= goal })
  }
  /** an added-time target (ms): judged against the strict baseline, shown against both */
  const added = (what: string, goal: number, value: (arm: string) => number | undefined, digits: number): void => {
    const strict = minus(value('orch-8'), value('strict'))
    const mock = minus(value('orch-8'), value('baseline'))
    out.push({ what, goal: `≤ strict + ${goal} ms`, measured: msText(strict, mock, digits), met: strict === undefined ? undefined : strict <= goal })
  }
  const add = (what: string, goal: string, value: number | undefined, fmt: (v: number) => string, ok: (v: number) => boolean): void => {
    out.push({ what, goal, measured: value === undefined ? 'not measured' : fmt(value), met: value === undefined ? undefined : ok(value) })
  }

  ratio('pinned, non-streaming, 8 accounts, c=50: req/s', 0.6, 'json', 'orch-8', 50)
  added('pinned, non-streaming, 8 accounts, c=50: p99', 5, (arm) => find(r, 'json', arm, 50)?.median.p99, 1)
  added('pinned, non-streaming, 8 accounts, c=1: latency per request', 0.3, (arm) => {
    const v = rps('json', arm, 1)
    return v === undefined ? undefined : 1000 / v // at c=1, 1/rps: finer than autocannon's millisecond histogram
  }, 3)
  ratio('pinned, streaming, 8 accounts, 100 streams: req/s', 0.8, 'sse', 'orch-8', 100)
  added(`pinned, streaming, 8 accounts, ${streams} streams: TTFB p99`, 5, (arm) => find(r, 'sse', arm, streams, 'ttfb')?.median.ttfb?.p99, 2)
  if (unpinnedSkipped === undefined) {
    const cell = find(r, 'json', 'orch-8 unpinned', 50)
    ratio('unpinned, non-streaming, 8 accounts, c=50: req/s', 1.5, 'json', 'orch-8 unpinned', 50)
    const busy = cell?.median.generatorCores
    if (busy !== undefined && busy > 0.9) out[out.length - 1].measured += ` (the load generator used ${Math.round(busy * 100)} % of its core: its ceiling, maybe not the server's)`
  } else {
    out.push({ what: 'unpinned, non-streaming, 8 accounts, c=50: req/s', goal: '≥ 1.5× strict', measured: `skipped: ${unpinnedSkipped}`, met: undefined })
  }
  const proxy = (arm: string): number | undefined => rps('proxy', arm, 50)
  add('proxy (http kind, 8 accounts), c=50: req/s', '≥ 0.6× Node\'s floor', over(proxy('http-proxy'), proxy('node-proxy')), (v) => `${v.toFixed(2)}× node:http → undici`, (v) => v >= 0.6)
  add('proxy (http kind, 8 accounts), c=50: req/s', '≥ 0.6× nginx', over(proxy('http-proxy'), proxy('nginx')), (v) => `${v.toFixed(2)}× nginx`, (v) => v >= 0.6)
  add('proxy (http kind, 8 accounts), c=50: req/s', '≥ 10× Portkey', over(proxy('http-proxy'), proxy('portkey')), (v) => `${v.toFixed(1)}× Portkey`, (v) => v >= 10)
  // the same with one account (a gateway in front of one key): what eight workers cost beside it
  add('proxy (http kind, 1 account), c=50: req/s', '≥ 0.6× Node\'s floor', over(proxy('http-proxy-1'), proxy('node-proxy')), (v) => `${v.toFixed(2)}× node:http → undici`, (v) => v >= 0.6)
  // judged on the default config; the eager rows are in the memory table for comparison
  const m30 = memory.find((m) => m.accounts === 30 && m.workers === 'default (auto)')
  const m100 = memory.find((m) => m.accounts === 100 && m.workers === 'default (auto)')
  add('30 idle accounts (default): RSS', '≤ 300 MB', m30?.rssIdleMb, (v) => `${Math.round(v)} MB`, (v) => v <= 300)
  add('100 idle accounts (default): RSS', '≤ 1 GB', m100?.rssIdleMb, (v) => `${Math.round(v)} MB`, (v) => v <= 1024)
  add('100 accounts (default): ready', '≤ 2 s', m100?.readyMs, (v) => `${(v / 1000).toFixed(2)} s`, (v) => v <= 2000)
  return out
}
