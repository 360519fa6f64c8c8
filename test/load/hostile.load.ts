/**
 * Hostile clients (issue 16, "Show it"). The orchestrator runs as its own process (`node src/main.ts --config …`, its
 * state and usage.json in a temp dir), with mock accounts that declare no `models`, so every model name a client sends
 * reaches them. Normal traffic runs at c=20 throughout (the official SDK, short echoed answers, a third streamed).
 * Calm windows alternate with hostile ones, so that whatever else the machine does falls on both alike; each hostile
 * window carries a third of:
 *   (a) 5 000 requests with distinct 2 KB model names (8 at a time),
 *   (b) 1 000 requests with distinct 1 MB `metadata.user_id` values (8 at a time),
 *   (c) 50 clients that read a 2 MB stream's status line and then nothing (cut after `server.writeStallTimeoutMs`),
 * and all of
 *   (d) 8 clients sending a 27 MiB body of ~1 M small text blocks at once (the body budget refuses most: by design).
 * Pass: every normal request succeeds; their p99 in the hostile windows stays within 2× the calm windows'; the
 * orchestrator's RSS grows at most RSS_BOUND_MB over its calm baseline; `/metrics` stays under 1 MB all along and a
 * scrape at rest takes under 100 ms, and so again after a restart on the same usage.json.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { request, type IncomingMessage } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import Anthropic from '@anthropic-ai/sdk'
import { Pool } from 'undici'
import { eventually, freePort } from '../helpers/orchestrator.ts'

const ROOT = new URL('../../', import.meta.url).pathname
const MB = 1024 * 1024
const MODEL = 'claude-test-1'
const CLIENTS = 20
const WARMUP_MS = 1_500
const CYCLES = 3
const CALM_MS = 3_000
/** each hostile window runs until its share is answered, then this much longer: the aftermath (GC) counts as hostile */
const TAIL_MS = 500
const STALL_MS = 2_000
const MODEL_NAMES = 5_000
const USER_IDS = 1_000
const STALLED = 50
const BIG_SENDERS = 8
/** the orchestrator's RSS may grow this much over its calm baseline, at its peak */
const RSS_BOUND_MB = 300
const METRICS_MAX_BYTES = 1_000_000
const SCRAPE_MAX_MS = 100

type Phase = 'warmup' | 'calm' | 'hostile'
interface Outcome { ok: boolean; ms: number; phase: Phase; sameWindow: boolean; error?: string }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const p99 = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0
}
const json = { 'content-type': 'application/json' }

/** One run of the orchestrator's entry point, stdout and stderr to a log file. */
interface Orchestrator { child: ChildProcess; pid: number; url: string; exited: Promise<unknown> }

async function launch(t: TestContext, configFile: string, logFile: string, port: number): Promise<Orchestrator> {
  const out = openSync(logFile, 'a')
  const child = spawn(process.execPath, ['src/main.ts', '--config', configFile], { cwd: ROOT, stdio: ['ignore', out, out] })
  closeSync(out)
  const exited = once(child, 'exit')
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const url = `http://127.0.0.1:${port}`
  await eventually(async () => {
    assert.equal(child.exitCode, null, `the orchestrator exited: ${readFileSync(logFile, 'utf8').slice(-2000)}`)
    try { return (await fetch(`${url}/healthz`)).ok } catch { return false }
  }, 'the orchestrator listens', 20_000)
  return { child, pid: child.pid!, url, exited }
}

async function stop(orch: Orchestrator): Promise<void> {
  process.kill(orch.pid, 'SIGTERM') // graceful: the usage ledger is saved on the way out
  await orch.exited
}

const rssMB = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024

async function scrape(url: string): Promise<{ bytes: number; ms: number; text: string }> {
  const began = performance.now()
  const text = await (await fetch(`${url}/metrics`)).text()
  return { bytes: Buffer.byteLength(text), ms: performance.now() - began, text }
}

/** the median of three scrapes: one scrape can lose its time slice to another process on a shared 2-core machine */
async function scrapeAtRest(url: string): Promise<{ bytes: number; ms: number; text: string }> {
  const runs = [await scrape(url), await scrape(url), await scrape(url)].sort((a, b) => a.ms - b.ms)
  return runs[1]
}

/** `run(i)` for every i in [from, to), `lanes` at a time */
async function lanes(from: number, to: number, n: number, run: (i: number, lane: number) => Promise<void>): Promise<void> {
  let next = from
  await Promise.all(Array.from({ length: n }, async (_, lane) => {
    for (let i = next++; i < to; i = next++) await run(i, lane)
  }))
}

const count = (tally: Map<string, number>, key: string | number): void => { tally.set(String(key), (tally.get(String(key)) ?? 0) + 1) }

test('hostile clients cannot exhaust the orchestrator or stall normal traffic', { timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'agyc-hostile-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const port = await freePort()
  const configFile = join(dir, 'config.json')
  const logFile = join(dir, 'orchestrator.log')
  writeFileSync(configFile, JSON.stringify({
    stateRoot: join(dir, 'state'),
    log: { level: 'info' },
    // bodyLimitBytes and bodyBudgetBytes at their defaults (32 MiB, 96 MiB): three 27 MiB bodies fit at once
    server: { port, writeStallTimeoutMs: STALL_MS },
    // no `models`: every name a client sends is served, and must not become a label of its own. The answer echoes
    // the prompt: short for normal traffic, 2 MB in 256 deltas for the stalled readers
    accounts: ['m1', 'm2', 'm3', 'm4'].map((id) => ({ id, maxConcurrency: 32, session: { kind: 'mock', text: '{prompt}', deltas: 256 } })),
  }))
  let orch = await launch(t, configFile, logFile, port)
  const sdk = new Anthropic({ baseURL: orch.url, apiKey: 'k', maxRetries: 0, timeout: 30_000 })

  // the hostile bodies, built once
  const userIdBodies = Array.from({ length: 8 }, () => Buffer.from(JSON.stringify({
    model: MODEL, max_tokens: 8, metadata: { user_id: 'u'.repeat(1_000_000) }, messages: [{ role: 'user', content: 'who am I' }],
  })))
  const userIdAt = userIdBodies[0].indexOf('uuuu')
  const streamBody = Buffer.from(JSON.stringify({ model: MODEL, max_tokens: 8, stream: true, messages: [{ role: 'user', content: 'y'.repeat(2 * MB) }] }))
  const block = '{"type":"text","text":"b"},'
  const blocks = Math.floor((27 * MB - 200) / block.length)
  const bigBody = Buffer.from(`{"model":"${MODEL}","max_tokens":8,"messages":[{"role":"user","content":[${block.repeat(blocks).slice(0, -1)}]},` +
    '{"role":"assistant","content":"ok"},{"role":"user","content":"big"}]}')

  let phase: Phase = 'warmup'
  let window = 0
  let running = true
  const outcomes: Outcome[] = []
  const rss: { phase: Phase; window: number; mb: number }[] = []
  const scrapes: { phase: Phase; bytes: number; ms: number }[] = []
  const got = { a: new Map<string, number>(), b: new Map<string, number>(), c: new Map<string, number>(), d: new Map<string, number>() }
  const cutAfterMs: number[] = []

  async function normalClient(i: number): Promise<void> {
    for (let n = 0; running; n++) {
      const began = performance.now()
      const during = phase
      const inWindow = window
      const prompt = `hello ${i}.${n}`
      try {
        let text = ''
        if (i % 3 === 0) {
          const stream = await sdk.messages.create({ model: MODEL, max_tokens: 16, stream: true, messages: [{ role: 'user', content: prompt }] })
          for await (const event of stream) if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text
        } else {
          const message = await sdk.messages.create({ model: MODEL, max_tokens: 16, messages: [{ role: 'user', content: prompt }] })
          text = message.content.map((b) => (b.type === 'text' ? b.text : '')).join('')
        }
        assert.equal(text, prompt, 'the answer echoes the prompt')
        outcomes.push({ ok: true, ms: performance.now() - began, phase: during, sameWindow: window === inWindow })
      } catch (err) {
        outcomes.push({ ok: false, ms: performance.now() - began, phase: during, sameWindow: window === inWindow, error: String(err) })
      }
    }
  }

  const sampler = setInterval(() => { try { rss.push({ phase, window, mb: rssMB(orch.pid) }) } catch { /* exiting */ } }, 100)
  const scraper = (async () => {
    while (running) {
      const s = await scrape(orch.url)
      scrapes.push({ phase, bytes: s.bytes, ms: s.ms })
      await sleep(1_000)
    }
  })()

  // (a) distinct 2 KB model names, through a pool of 8 connections
  const namePool = new Pool(orch.url, { connections: 8 })
  const names = (from: number, to: number) => lanes(from, to, 8, async (i) => {
    const model = `${String(i).padStart(6, '0')}-${'n'.repeat(2042)}`
    const res = await namePool.request({ path: '/v1/messages', method: 'POST', headers: json,
      body: JSON.stringify({ model, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }) })
    await res.body.dump()
    count(got.a, res.statusCode)
  })

  // (b) distinct 1 MB user ids: each lane rewrites the head of its own body (the previous request was answered)
  const userPool = new Pool(orch.url, { connections: 8 })
  const userIds = (from: number, to: number) => lanes(from, to, 8, async (i, lane) => {
    const body = userIdBodies[lane]
    body.write(String(i).padStart(12, '0'), userIdAt, 'latin1')
    const res = await userPool.request({ path: '/v1/messages', method: 'POST', headers: json, body })
    await res.body.dump()
    count(got.b, res.statusCode)
  })

  /** a raw client on its own connection: resolves with the response once its status line arrived */
  function send(body: Buffer): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/messages', agent: false,
        headers: { ...json, 'content-length': body.length } }, (res) => {
        res.on('error', () => {}) // a cut shows as the socket's close
        resolve(res)
      })
      req.on('error', reject) // after the response, a no-op
      req.end(body)
    })
  }

  // (c) stalled readers, one after another: the status line, then nothing; the orchestrator must cut them
  async function stalled(n: number): Promise<void> {
    const cuts: Promise<void>[] = []
    for (let i = 0; i < n; i++) {
      const res = await send(streamBody)
      count(got.c, res.statusCode ?? 0)
      res.pause()
      res.socket.pause()
      const since = performance.now()
      let leftOnItsOwn = false
      // never cut (say, the whole answer fit into the socket buffers): the client leaves, and the count shows it
      const leave = setTimeout(() => { leftOnItsOwn = true; res.socket.destroy() }, STALL_MS + 10_000)
      cuts.push(once(res.socket, 'close').then(() => {
        clearTimeout(leave)
        if (!leftOnItsOwn) cutAfterMs.push(performance.now() - since)
      }))
    }
    await Promise.all(cuts)
  }

  // (d) 27 MiB bodies, 8 at once
  const big = () => Promise.all(Array.from({ length: BIG_SENDERS }, async () => {
    try {
      const res = await send(bigBody)
      res.resume()
      await once(res, 'end').catch(() => {})
      count(got.d, res.statusCode ?? 0)
    } catch (err) {
      count(got.d, (err as NodeJS.ErrnoException).code ?? 'error')
    }
  }))

  const share = (total: number, k: number): [number, number] => [Math.floor((total * k) / CYCLES), Math.floor((total * (k + 1)) / CYCLES)]
  const began = performance.now()
  const loops = Array.from({ length: CLIENTS }, (_, i) => normalClient(i))
  await sleep(WARMUP_MS)
  const hostileMs: number[] = []
  for (let k = 0; k <= CYCLES; k++) {
    phase = 'calm'
    window++
    await sleep(CALM_MS)
    if (k === CYCLES) break // a last calm window, so both kinds are spread over the whole run
    phase = 'hostile'
    window++
    const from = performance.now()
    const [s, e] = share(STALLED, k)
    await Promise.all([names(...share(MODEL_NAMES, k)), userIds(...share(USER_IDS, k)), stalled(e - s), big()])
    await sleep(TAIL_MS)
    hostileMs.push(performance.now() - from)
  }
  running = false
  await Promise.all(loops)
  await scraper
  clearInterval(sampler)
  await Promise.all([namePool.close(), userPool.close()])
  const runMs = performance.now() - began

  // every normal request answered, and as fast as in the calm windows (each counted only if it began and ended in one window)
  const failed = outcomes.filter((o) => !o.ok)
  const ms = (p: Phase) => outcomes.filter((o) => o.ok && o.phase === p && o.sameWindow).map((o) => o.ms)
  const calm = p99(ms('calm'))
  const hostile = p99(ms('hostile'))
  const baseline = rss.filter((r) => r.window === 1).at(-1)!.mb
  const peak = Math.max(...rss.map((r) => r.mb))
  const settled = rss.at(-1)!.mb
  const rest = await scrapeAtRest(orch.url)
  const hostileScrapes = scrapes.filter((s) => s.phase === 'hostile')
  const tally = (m: Map<string, number>) => [...m].map(([k, v]) => `${k}×${v}`).join(' ')
  t.diagnostic(`run ${(runMs / 1000).toFixed(1)} s, hostile windows ${hostileMs.map((x) => (x / 1000).toFixed(1)).join(' / ')} s; ` +
    `normal requests ${outcomes.length} (calm ${ms('calm').length}, hostile ${ms('hostile').length}), failed ${failed.length}; ` +
    `p99 calm ${calm.toFixed(1)} ms, hostile ${hostile.toFixed(1)} ms`)
  t.diagnostic(`hostile answers: (a) ${tally(got.a)}; (b) ${tally(got.b)}; (c) ${tally(got.c)}, cut after ` +
    `${Math.min(...cutAfterMs).toFixed(0)}–${Math.max(...cutAfterMs).toFixed(0)} ms; (d) ${tally(got.d)}`)
  t.diagnostic(`RSS calm baseline ${baseline.toFixed(0)} MB, peak ${peak.toFixed(0)} MB (+${(peak - baseline).toFixed(0)}), ` +
    `at the end ${settled.toFixed(0)} MB; /metrics at most ${Math.max(...scrapes.map((s) => s.bytes))} B, ` +
    `scrape during hostile windows ≤ ${Math.max(...hostileScrapes.map((s) => s.ms)).toFixed(0)} ms, at rest ${rest.bytes} B in ${rest.ms.toFixed(1)} ms`)

  assert.equal(failed.length, 0, `every normal request succeeds: ${failed.slice(0, 3).map((f) => f.error).join(' | ')}`)
  assert.ok(ms('calm').length > 500 && ms('hostile').length > 500, 'enough normal traffic in both kinds of window')
  assert.ok(hostile <= 2 * calm, `normal p99 ${hostile.toFixed(1)} ms under hostile clients stays within 2× calm ${calm.toFixed(1)} ms`)
  assert.equal(got.a.get('200'), MODEL_NAMES, 'every distinct model name was served')
  assert.equal([...got.b.values()].reduce((x, y) => x + y, 0), USER_IDS, 'every 1 MB user id got an answer')
  assert.equal(got.c.get('200'), STALLED, 'every stalled reader got its status line')
  assert.equal(cutAfterMs.length, STALLED, 'every stalled reader was cut')
  assert.ok(Math.max(...cutAfterMs) < STALL_MS + 5_000, 'within the stall limit and a little')
  assert.equal([...got.d.values()].reduce((x, y) => x + y, 0), BIG_SENDERS * CYCLES, 'every 27 MiB sender got an answer or a cut')
  assert.ok((got.d.get('200') ?? 0) >= CYCLES, 'a 27 MiB body within the budget is served')
  assert.ok(peak - baseline <= RSS_BOUND_MB, `RSS grew ${(peak - baseline).toFixed(0)} MB over the calm baseline (bound ${RSS_BOUND_MB} MB)`)
  assert.ok(scrapes.every((s) => s.bytes < METRICS_MAX_BYTES), '/metrics stays under 1 MB all along')
  assert.ok(rest.ms < SCRAPE_MAX_MS, `a scrape at rest took ${rest.ms.toFixed(1)} ms`)
  const logged = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('"AGYC_WRITE_STALLED"')).length
  assert.equal(logged, STALLED, 'the access lines name each stall')

  // restart on the same state: the usage ledger comes back bounded
  await stop(orch)
  const usageBytes = statSync(join(dir, 'state', 'usage.json')).size
  orch = await launch(t, configFile, logFile, port)
  const first = await scrape(orch.url)
  const again = await scrapeAtRest(orch.url)
  const answered = await new Anthropic({ baseURL: orch.url, apiKey: 'k', maxRetries: 0, timeout: 5_000 })
    .messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'back' }] })
  await stop(orch)
  t.diagnostic(`usage.json ${usageBytes} B; after the restart /metrics ${first.bytes} B, first scrape ${first.ms.toFixed(1)} ms, ` +
    `at rest ${again.ms.toFixed(1)} ms`)
  const folded = [...first.text.matchAll(/^agyc_usage_requests_total\{account="m\d",model="other"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0)
  assert.ok(folded >= MODEL_NAMES, `the folded names' requests are kept across the restart (${folded})`)
  assert.ok(first.bytes < METRICS_MAX_BYTES && again.bytes < METRICS_MAX_BYTES, '/metrics after the restart stays under 1 MB')
  assert.ok(again.ms < SCRAPE_MAX_MS, `a scrape after the restart took ${again.ms.toFixed(1)} ms`)
  assert.equal(answered.content[0]?.type, 'text', 'a request after the restart is served')
})
