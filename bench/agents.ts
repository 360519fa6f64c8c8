/**
 * Agent CLIs: the tool bridge's latency (issue 14, item 6). Real Claude Code, Codex and Gemini CLI accounts
 * (`session.tools` at its default, "auto") behind an orchestrator run as a child process, each CLI pointed at a fake
 * model on 127.0.0.1 that answers at once (test/helpers/fake-tool-model.ts, fake-claude-tool-model.ts; fake-models.ts
 * for the headline's plain answers). Time to first token is the official SDK's stream, request sent → first text
 * delta, c=1. Writes its table into docs/performance.md between `<!-- agents:begin -->` and `<!-- agents:end -->`.
 *
 *   node_modules/.bin/node bench/agents.ts [--quick] [--only claude-code|codex|gemini-cli] [--pause-ms N]
 *
 * `--only`: that preset's rows alone, without the headline; printed, not written into the page (a partial run).
 * `--pause-ms`: a pause before each warm request (a client that is not a loop: what was started ahead has booted).
 *
 * Not part of bench/run.ts: it starts dozens of CLIs (~0.2–0.3 GB each) and takes minutes.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Anthropic from '@anthropic-ai/sdk'
import type { PresetKind } from '../src/config/schema.ts'
import { startFakeToolModel } from '../test/helpers/fake-tool-model.ts'
import { startFakeClaudeModel } from '../test/helpers/fake-claude-tool-model.ts'
import { startFakeModels } from '../test/helpers/fake-models.ts'
import { BENCH_KEY_VAR, runDirect, startOrchestrator, untilReady, type RunningOrchestrator } from './agent-procs.ts'
import { stopEveryProc } from './procs.ts'

const quick = process.argv.includes('--quick')
const COLD_RUNS = quick ? 1 : 3
const WARM_RUNS = quick ? 3 : 10
const DIRECT_RUNS = quick ? 1 : 3
/** accounts per preset for the headline, largest first: the first count that is ready in READY_MS is reported */
const FLEET_COUNTS = quick ? [1] : [10, 5, 2]
const READY_MS = quick ? 90_000 : 240_000
const DOC = fileURLToPath(new URL('../docs/performance.md', import.meta.url))
const BEGIN = '<!-- agents:begin -->'
const END = '<!-- agents:end -->'

const ALL_KINDS: PresetKind[] = ['claude-code', 'codex', 'gemini-cli']
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined
if (only !== undefined && !ALL_KINDS.includes(only as PresetKind)) throw new Error(`--only: expected one of ${ALL_KINDS.join(', ')}`)
const KINDS: PresetKind[] = only === undefined ? ALL_KINDS : [only as PresetKind]
const pauseMs = process.argv.includes('--pause-ms') ? Number(process.argv[process.argv.indexOf('--pause-ms') + 1]) : 0
const pause = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, pauseMs))
const NAME: Record<PresetKind, string> = { 'claude-code': 'Claude Code', codex: 'Codex', 'gemini-cli': 'Gemini CLI' }
const MODEL: Record<PresetKind, string> = { 'claude-code': 'claude-fake-1', codex: 'gpt-fake', 'gemini-cli': 'gemini-fake' }
const ANSWER = 'Hello from the fake model.'
const FINAL = 'It is sunny.'
/** a prompt carrying this makes the fake model call the client's tool first */
const CALL = '[[call get_weather]]'

const WEATHER: Anthropic.Tool = {
  name: 'get_weather', description: 'The current weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
}

const dir = mkdtempSync(join(tmpdir(), 'agyc-bench-agents-'))
const started = performance.now()
const log = (line: string): void => void process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0)} s] ${line}\n`)

// one fake per wire: Codex and Gemini CLI share one (their paths differ), Claude Code has the Anthropic API's. The
// script answers a tool result with FINAL, a prompt carrying CALL with a call of get_weather, anything else with ANSWER.
const answered = (body: unknown): boolean => /function_call_output|functionResponse|"tool_result"/.test(JSON.stringify(body))
const wantsCall = (body: unknown): boolean => JSON.stringify(body).includes(CALL)
const tool = await startFakeToolModel((call) => {
  if (answered(call.body)) return { text: [FINAL] }
  if (!wantsCall(call.body)) return { text: [ANSWER] }
  return { calls: [{ name: call.provider === 'gemini' ? 'mcp_client_get_weather' : 'get_weather', args: { city: 'Paris' } }] }
})
const claude = await startFakeClaudeModel((call) => {
  if (answered(call.body)) return { text: [FINAL] }
  return wantsCall(call.body) ? { calls: [{ name: 'get_weather', input: { city: 'Paris' } }] } : { text: [ANSWER] }
})

function session(kind: PresetKind, base: { tool: string; claude: string }): Record<string, unknown> {
  const baseUrl = kind === 'claude-code' ? base.claude : kind === 'codex' ? `${base.tool}/v1` : base.tool
  return { kind, baseUrl, model: MODEL[kind], apiKey: { fromEnv: BENCH_KEY_VAR }, killGraceMs: 500, idleTimeoutMs: 60_000 }
}

function config(perPreset: number, base: { tool: string; claude: string }): Record<string, unknown> {
  return {
    dispatcher: { requestTimeoutMs: 60_000, lazyWorkers: { enabled: false } },
    accounts: KINDS.flatMap((kind) => Array.from({ length: perPreset }, (_, i) => ({
      id: `${kind}-${i + 1}`, maxConcurrency: 1, models: [MODEL[kind]], session: session(kind, base),
    }))),
  }
}

interface Streamed { ttftMs: number; message: Anthropic.Message }

/** request sent → first text delta (the SDK's `text` event), then the whole message */
async function streamed(client: Anthropic, request: Anthropic.MessageCreateParamsNonStreaming): Promise<Streamed> {
  const sent = performance.now()
  let ttftMs = -1
  const stream = client.messages.stream(request)
  stream.on('text', () => { if (ttftMs < 0) ttftMs = performance.now() - sent })
  const message = await stream.finalMessage()
  if (ttftMs < 0) throw new Error(`no text delta (stop_reason ${message.stop_reason})`)
  return { ttftMs, message }
}

const ask = (kind: PresetKind, text: string, tools = true): Anthropic.MessageCreateParamsNonStreaming => ({
  model: MODEL[kind], max_tokens: 256, ...(tools ? { tools: [WEATHER] } : {}), messages: [{ role: 'user', content: text }],
})

/** the client's side of one tool round: the tool_use answered with a tool_result */
async function continuation(client: Anthropic, kind: PresetKind, i: number): Promise<number> {
  const request = ask(kind, `Weather in Paris? ${CALL} #${i}`)
  const first = await client.messages.create(request)
  const uses = first.content.filter((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use')
  if (first.stop_reason !== 'tool_use' || uses.length !== 1) throw new Error(`${kind}: expected one tool_use, got ${first.stop_reason}`)
  const next = await streamed(client, {
    ...request,
    messages: [...request.messages, { role: 'assistant', content: first.content as Anthropic.ContentBlockParam[] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: uses[0].id, content: '22°C and sunny' }] }],
  })
  if (!next.message.content.some((b) => b.type === 'text' && b.text === FINAL)) throw new Error(`${kind}: the continuation did not end with the final text`)
  return next.ttftMs
}

const pct = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? NaN
}
const ms = (v: number): string => (Number.isFinite(v) ? `${Math.round(v)}` : '—')
const runs = (values: number[]): string => values.map(ms).join(', ')

interface PresetRow { cold: number[]; fresh: number[]; noTools: number[]; continued: number[]; direct: number[]; directFailed: number }
const rows = new Map<PresetKind, PresetRow>(KINDS.map((k) => [k, { cold: [], fresh: [], noTools: [], continued: [], direct: [], directFailed: 0 }]))
const base = { tool: tool.url, claude: claude.url }

async function withOrchestrator<T>(name: string, raw: Record<string, unknown>, readyMs: number, fn: (orch: RunningOrchestrator, client: Anthropic) => Promise<T>): Promise<T> {
  const orch = await startOrchestrator(dir, name, raw)
  try {
    await untilReady(orch, readyMs)
    return await fn(orch, new Anthropic({ baseURL: orch.url, apiKey: 'bench', maxRetries: 0, timeout: 60_000 }))
  } finally {
    await orch.stop()
  }
}

interface Fleet { perPreset: number; readyS: number; rssReadyMb: number; rssPeakMb: number; p50: number; p99: number; failed: number }
/** the larger counts that did not get ready, and why */
const headlineTried: string[] = []

async function fleet(): Promise<Fleet | undefined> {
  const models = await startFakeModels()
  try {
    for (const perPreset of FLEET_COUNTS) {
      const n = perPreset * KINDS.length
      log(`headline: ${n} accounts`)
      const orch = await startOrchestrator(dir, `fleet-${n}`, config(perPreset, { tool: models.url, claude: models.url }))
      try {
        try {
          await untilReady(orch, READY_MS)
        } catch (err) {
          headlineTried.push(`${n} accounts not ready in ${READY_MS / 1000} s (${(err as Error).message})`)
          continue
        }
        const readyS = (performance.now() - orch.proc.startedAt) / 1000
        const rssReadyMb = orch.rssMb()
        let rssPeakMb = rssReadyMb
        const sampler = setInterval(() => { rssPeakMb = Math.max(rssPeakMb, orch.rssMb()) }, 250)
        const client = new Anthropic({ baseURL: orch.url, apiKey: 'bench', maxRetries: 0, timeout: 120_000 })
        const results = await Promise.allSettled(KINDS.flatMap((kind) => Array.from({ length: perPreset }, () => streamed(client, ask(kind, 'Say hello', false)))))
        clearInterval(sampler)
        const ttfts = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.ttftMs] : []))
        for (const r of results) if (r.status === 'rejected') log(`headline request failed: ${String(r.reason)}`)
        return { perPreset, readyS, rssReadyMb, rssPeakMb, p50: pct(ttfts, 0.5), p99: pct(ttfts, 0.99), failed: results.length - ttfts.length }
      } finally {
        await orch.stop()
      }
    }
    return undefined
  } finally {
    await models.close()
  }
}

let headline: Fleet | undefined
try {
  for (let run = 0; run < COLD_RUNS; run++) {
    log(`cold run ${run + 1}: a fresh orchestrator, one account per preset`)
    await withOrchestrator(`cold-${run}`, config(1, base), 120_000, async (_orch, client) => {
      for (const kind of KINDS) rows.get(kind)!.cold.push((await streamed(client, ask(kind, `Say hello (cold ${run})`))).ttftMs)
      if (run > 0) return
      for (let i = 0; i < WARM_RUNS; i++) {
        for (const kind of KINDS) {
          const row = rows.get(kind)!
          await pause()
          row.fresh.push((await streamed(client, ask(kind, `Say hello #${i}`))).ttftMs)
          await pause()
          row.noTools.push((await streamed(client, ask(kind, `Say hello #${i}`, false))).ttftMs)
          await pause()
          row.continued.push(await continuation(client, kind, i))
        }
      }
    })
  }
  for (const kind of KINDS) {
    log(`${kind} run directly`)
    for (let i = 0; i < DIRECT_RUNS; i++) {
      const run = await runDirect(kind, session(kind, base), ANSWER)
      if (run.ok) rows.get(kind)!.direct.push(run.firstByteMs)
      else rows.get(kind)!.directFailed++
    }
  }
  if (only === undefined) headline = await fleet()
} finally {
  await stopEveryProc()
  await Promise.all([tool.close(), claude.close()])
  rmSync(dir, { recursive: true, force: true })
}

const runtimeS = (performance.now() - started) / 1000
const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), ${Math.round(totalmem() / 2 ** 30)} GB, Node ${process.versions.node}`
const lines = [
  `Run ${new Date().toISOString().slice(0, 10)}${quick ? ' (`--quick`)' : ''}, ${runtimeS.toFixed(0)} s, on ${machine}, a machine **shared** with other`,
  'sessions at the time: indicative only. Time to first token = the SDK\'s stream, request sent → first text delta, in',
  'ms, c=1; the fake model answers at once. "Fresh conversation": a request declaring the client\'s tool (the bridge),',
  '"no tools": the agent\'s own mode; "continuation": the `tool_result` follow-up to the CLI parked on the call;',
  '"directly": the CLI\'s own headless mode, spawn → first stdout byte (the answer), a fresh state directory each run.',
  '',
  `| preset | cold (fresh orchestrator, first request) | fresh conversation, p50 of ${WARM_RUNS} | no tools, p50 | continuation, p50 | CLI directly |`,
  '|---|---:|---:|---:|---:|---:|',
  ...KINDS.map((kind) => {
    const r = rows.get(kind)!
    const direct = r.direct.length > 0 ? runs(r.direct) : '—'
    return `| ${NAME[kind]} | ${runs(r.cold)} | ${ms(pct(r.fresh, 0.5))} (p99 ${ms(pct(r.fresh, 0.99))}) | ${ms(pct(r.noTools, 0.5))} | ${ms(pct(r.continued, 0.5))} (p99 ${ms(pct(r.continued, 0.99))}) | ${direct}${r.directFailed ? ` (${r.directFailed} failed)` : ''} |`
  }),
  '',
]
if (only !== undefined) {
  lines.push(`Only ${NAME[only as PresetKind]} (\`--only\`)${pauseMs ? `, ${pauseMs} ms before each warm request` : ''}: no headline.`)
} else if (headline) {
  const n = headline.perPreset * KINDS.length
  lines.push(
    `The headline: ${n} real CLI accounts (${headline.perPreset} per preset, maxConcurrency 1, Claude Code's \`prewarm\` 1) serving ${n}`,
    'concurrent streamed requests without tools (fake-models.ts). Ready = spawn → every account\'s CLI up in',
    '`/admin/accounts`; memory = VmRSS summed over the orchestrator and every descendant.',
    '',
    '| accounts | ready | RSS when ready | RSS peak under load | TTFT p50 | TTFT p99 | failed |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    `| ${n} | ${headline.readyS.toFixed(1)} s | ${(headline.rssReadyMb / 1024).toFixed(2)} GB | ${(headline.rssPeakMb / 1024).toFixed(2)} GB | ${ms(headline.p50)} ms | ${ms(headline.p99)} ms | ${headline.failed} |`,
  )
  if (headline.perPreset < 10) lines.push('', `Not 30: ${headlineTried.join('; ') || `a --quick run asks for ${n}`}.`)
} else {
  lines.push(`The headline did not run: ${headlineTried.join('; ') || 'no count was ready'}.`)
}
const table = lines.join('\n')
process.stdout.write(`${table}\n`)

if (only !== undefined) process.exit(0) // a partial run: the page keeps its whole table
const page = readFileSync(DOC, 'utf8')
const at = page.indexOf(BEGIN)
const to = page.indexOf(END, at)
const body = `${BEGIN}\n\n${table}\n\n${END}`
writeFileSync(DOC, at >= 0 && to >= 0
  ? page.slice(0, at) + body + page.slice(to + END.length)
  : `${page.trimEnd()}\n\n## Agent CLIs: the tool bridge's latency\n\n\`node_modules/.bin/node bench/agents.ts [--quick]\` (bench/agents.ts; not part of \`npm run bench\`).\n\n${body}\n`)
log(`${DOC}: written`)
