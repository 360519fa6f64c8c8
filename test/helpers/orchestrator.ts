/**
 * Starts a real orchestrator in this test process: real worker threads, real HTTP on 127.0.0.1 port 0, and the
 * official SDK as client. Logs are captured as parsed JSON lines. On teardown it closes everything and checks that no
 * child process the accounts reported is still alive.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { Writable } from 'node:stream'
import type { TestContext } from 'node:test'
import Anthropic from '@anthropic-ai/sdk'
import { parseConfig } from '../../src/config/load.ts'
import { startOrchestrator, type Orchestrator } from '../../src/orchestrator.ts'

export interface Started {
  orch: Orchestrator
  url: string
  client: Anthropic
  /** every log line written so far, parsed */
  logs: Record<string, unknown>[]
  dir: string
  /** the config as written to `dir/config.json`; rewrite it with `writeConfig` and reload */
  configFile: string
}

export const hello = {
  model: 'claude-test-1',
  max_tokens: 64,
  messages: [{ role: 'user' as const, content: 'Say hello' }],
}

export function mockAccounts(n: number, session: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return Array.from({ length: n }, (_, i) => ({
    id: `acc${String(i + 1).padStart(2, '0')}`, maxConcurrency: 4, session: { kind: 'mock', ...session }, ...extra,
  }))
}

export async function start(t: TestContext, raw: Record<string, unknown>): Promise<Started> {
  const dir = mkdtempSync(join(tmpdir(), 'agyc-test-'))
  const logs: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  const full = { log: { level: 'info' }, ...raw, server: { port: 0, ...(raw.server as object) } }
  const config = parseConfig(full, dir)
  // written out too, so that a test can change it and reload (SIGHUP / POST /admin/reload re-read this file)
  const configFile = join(dir, 'config.json')
  writeFileSync(configFile, JSON.stringify(full, null, 2))
  const orch = await startOrchestrator(config, { logDestination: sink, configFile })
  const client = new Anthropic({ baseURL: orch.url, apiKey: 'test-key', maxRetries: 0 })
  t.after(async () => {
    const pids = orch.dispatcher.accounts.flatMap((a) => [...a.childPids])
    await orch.close(2_000)
    for (const pid of pids) assert.equal(isAlive(pid), false, `child ${pid} survived the orchestrator`)
    // fixtures record themselves (test/fixtures/common.mjs): this also catches a child the main thread never heard of
    await eventually(() => fixturePids(dir).every((pid) => !isAlive(pid)), `no fixture process survives (${fixturePids(dir).filter(isAlive).join(', ')})`, 3_000)
    rmSync(dir, { recursive: true, force: true })
  })
  return { orch, url: orch.url, client, logs, dir, configFile }
}

/** PIDs every fixture process started under `dir` recorded in its state directory (`<stateDir>/pids/<pid>`). */
export function fixturePids(dir: string): number[] {
  const pids: number[] = []
  const walk = (d: string): void => {
    let entries
    try { entries = readdirSync(d, { withFileTypes: true }) } catch { return }
    for (const e of entries) {
      if (!e.isDirectory()) continue
      const path = join(d, e.name)
      if (e.name === 'pids') for (const name of readdirSync(path)) pids.push(Number(name))
      else walk(path)
    }
  }
  walk(dir)
  return pids
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  // an orphan whose new parent has not reaped it yet is a zombie: it has exited and holds nothing
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return true
  }
}

/** Polls `check` until it returns true or `ms` pass; fails with `what`. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 20))
  }
  assert.fail(`timed out waiting: ${what}`)
}

/** A raw POST, for what the SDK would refuse to send. */
export async function post(url: string, path: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; json: any; text: string }> {
  const res = await fetch(url + path, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } })
  const text = await res.text()
  let json: unknown
  try { json = JSON.parse(text) } catch { json = undefined }
  return { status: res.status, headers: res.headers, json, text }
}

/** The text of an answer's text blocks. */
export const textOf = (message: Anthropic.Message): string =>
  message.content.map((b) => (b.type === 'text' ? b.text : '')).join('')

/** Awaits a request that must fail, and returns the SDK's error. */
export async function apiError(promise: Promise<unknown>): Promise<InstanceType<typeof Anthropic.APIError>> {
  try {
    await promise
  } catch (err) {
    assert.ok(err instanceof Anthropic.APIError, `expected an APIError, got ${String(err)}`)
    return err
  }
  assert.fail('expected the request to fail')
}

/** A port nothing listens on right now (for a fixture server a config must name in advance). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}
