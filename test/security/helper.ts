/**
 * The security suite's harness: a real orchestrator on 127.0.0.1 port 0 (as test/helpers/orchestrator.ts) whose log is
 * kept as raw text, so a test can grep it for a secret or check its line structure in pretty mode, and a raw socket
 * client for what fetch and the SDK refuse to send (an empty Host, an absolute-form target, a dot segment).
 *
 * Refusals are checked against an `exec` account running the fixture agent (test/fixtures/exec-agent.mjs), a real
 * child process per request that records its PID in its state directory: `footprint` before and
 * `assertNothingHappened` after a hostile request prove that no session saw it, no child was spawned for it and not
 * one file was created or changed under the test's folder (the config's folder, which holds the state root).
 */
import assert from 'node:assert/strict'
import { lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { Writable } from 'node:stream'
import { after } from 'node:test'
import type { TestContext } from 'node:test'
import { parseConfig } from '../../src/config/load.ts'
import { startOrchestrator, type Orchestrator } from '../../src/orchestrator.ts'
import { fixturePids, isAlive } from '../helpers/orchestrator.ts'

export { hello, mockAccounts } from '../helpers/orchestrator.ts'

export interface Secured {
  orch: Orchestrator
  url: string
  port: number
  dir: string
  /** everything logged so far, as written */
  logText(): string
}

export const execAgent = new URL('../fixtures/exec-agent.mjs', import.meta.url).pathname

/** An `exec` account running the fixture agent: one real child per request, each recording its PID (fixturePids). */
export function execAccount(id = 'exec1', args: string[] = []) {
  return { id, maxConcurrency: 4, session: { kind: 'exec', command: 'node', args: [execAgent, ...args] } }
}

/**
 * One orchestrator for every test of a file that uses the same config, started at the first call and closed after the
 * file's tests (with the same checks as `startSecured`). Tests compare footprints, not absolute counts.
 */
export function sharedSecured(raw: Record<string, unknown>): () => Promise<Secured> {
  let started: Promise<Secured> | undefined
  const closers: (() => unknown)[] = []
  after(async () => { for (const close of closers) await close() })
  return () => (started ??= startSecured({ after: (fn: () => unknown) => { closers.push(fn) } }, raw))
}

export async function startSecured(t: Pick<TestContext, 'after'>, raw: Record<string, unknown>): Promise<Secured> {
  const dir = mkdtempSync(join(tmpdir(), 'agyc-sec-'))
  let text = ''
  const sink = new Writable({ write(chunk: Buffer, _enc, done) { text += chunk.toString(); done() } })
  const config = parseConfig({ log: { level: 'info' }, ...raw, server: { port: 0, ...(raw.server as object) } }, dir)
  const orch = await startOrchestrator(config, { logDestination: sink })
  t.after(async () => {
    const pids = orch.dispatcher.accounts.flatMap((a) => [...a.childPids])
    await orch.close(2_000)
    for (const pid of pids) assert.equal(isAlive(pid), false, `child ${pid} survived the orchestrator`)
    rmSync(dir, { recursive: true, force: true })
  })
  return { orch, url: orch.url, port: Number(new URL(orch.url).port), dir, logText: () => text }
}

/** What requests leave behind: work seen by sessions, fixture children spawned, every file under the test's folder. */
export interface Footprint {
  work: number
  children: number
  files: Map<string, string>
}

export async function footprint(s: Secured): Promise<Footprint> {
  return { work: await sessionWork(s.orch), children: fixturePids(s.dir).length, files: filesUnder(s.dir) }
}

/** `before` was taken before the hostile requests: none reached a session, spawned a child or wrote a file. */
export async function assertNothingHappened(s: Secured, before: Footprint, what = 'a refused request'): Promise<void> {
  const now = await footprint(s)
  assert.equal(now.work - before.work, 0, `a session saw ${what}`)
  assert.equal(now.children - before.children, 0, `a child process was spawned for ${what}`)
  const changed = [...new Set([...before.files.keys(), ...now.files.keys()])].filter((path) => before.files.get(path) !== now.files.get(path))
  assert.deepEqual(changed, [], `files created, changed or removed for ${what}`)
}

/**
 * path → type, size and mtime of everything under `dir`. The usage ledger's periodic save (`<stateRoot>/usage.json`,
 * every 10 s whether or not requests come) is left out: it is the orchestrator's clock, not a request's doing.
 */
export function filesUnder(dir: string): Map<string, string> {
  const out = new Map<string, string>()
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const path = join(d, name)
      if (/^usage\.json/.test(name)) continue
      const st = lstatSync(path)
      // a directory is its entries (its own mtime moves with the usage file's rename)
      out.set(relative(dir, path), st.isDirectory() ? 'dir' : `${st.isSymbolicLink() ? 'link' : 'file'}:${st.size}:${st.mtimeMs}`)
      if (st.isDirectory()) walk(path)
    }
  }
  walk(dir)
  return out
}

/** Requests every account's worker has seen (served, failed or cancelled): 0 means nothing reached a session. */
export async function sessionWork(orch: Orchestrator): Promise<number> {
  let n = 0
  for (const account of orch.dispatcher.accounts) {
    const s = await account.stats()
    n += s.served + s.failed + s.cancelled + s.running + s.queued
  }
  return n
}

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
  json: any
}

/**
 * Writes `request` as is on a fresh connection and reads one response (until the server closes, or the declared
 * length has arrived). `status` 0 means the connection closed without any response.
 */
export function rawRequest(port: number, request: string | Buffer, timeoutMs = 10_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let data = Buffer.alloc(0)
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('raw request timed out')) }, timeoutMs)
    const finish = (): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(parseResponse(data.toString('latin1')))
    }
    socket.on('data', (chunk) => {
      data = Buffer.concat([data, chunk])
      const r = parseResponse(data.toString('latin1'))
      const length = Number(r.headers['content-length'] ?? NaN)
      if (r.status >= 200 && Buffer.byteLength(r.body, 'latin1') >= length) finish()
    })
    socket.on('end', finish)
    socket.on('close', finish)
    socket.on('error', () => finish())
    socket.write(request)
  })
}

function parseResponse(text: string): RawResponse {
  // skip interim 1xx responses (100 Continue)
  let rest = text
  while (/^HTTP\/1\.1 1\d\d /.test(rest) && rest.includes('\r\n\r\n')) rest = rest.slice(rest.indexOf('\r\n\r\n') + 4)
  const end = rest.indexOf('\r\n\r\n')
  if (!rest.startsWith('HTTP/') || end === -1) return { status: 0, headers: {}, body: '', json: undefined }
  const [statusLine, ...lines] = rest.slice(0, end).split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  const body = rest.slice(end + 4)
  let json: unknown
  try { json = JSON.parse(body) } catch { json = undefined }
  return { status: Number(statusLine.split(' ')[1]), headers, body, json }
}

export const helloBody = JSON.stringify({ model: 'claude-test-1', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] })

/** A raw POST /v1/messages with the given request line target and extra header lines. */
export function rawPost(target: string, headerLines: string[], body = helloBody): string {
  return `POST ${target} HTTP/1.1\r\n${headerLines.map((h) => `${h}\r\n`).join('')}` +
    `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
}

export function assertError(res: { status: number; json: any }, status: number, type: string): void {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${JSON.stringify(res.json)}`)
  assert.equal(res.json?.type, 'error')
  assert.equal(res.json?.error?.type, type)
}
