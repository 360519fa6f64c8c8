import assert from 'node:assert/strict'
import { test } from 'node:test'
import Anthropic from '@anthropic-ai/sdk'
import { apiError, eventually, isAlive, start, textOf } from './helpers/orchestrator.ts'

const AGENT = new URL('./fixtures/stdio-agent.mjs', import.meta.url).pathname

const ask = (content: string) => ({ model: 'claude-test-1', max_tokens: 64, messages: [{ role: 'user' as const, content }] })

function stdioAccount(id: string, session: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  const args = (session.args as string[] | undefined) ?? []
  return {
    id, maxConcurrency: 4,
    session: {
      kind: 'stdio', command: 'node', idleTimeoutMs: 5_000, killGraceMs: 300, startTimeoutMs: 5_000,
      restart: { initialDelayMs: 50, maxDelayMs: 200 }, ...session, args: [AGENT, ...args],
    },
    ...extra,
  }
}

const pidIn = (text: string): number => Number(/pid (\d+)/.exec(text)?.[1])


test('stdio answers streamed and not, from one long-lived child', async (t) => {
  const { client, orch } = await start(t, { accounts: [stdioAccount('a')] })
  const whole = await client.messages.create(ask('hello'))
  assert.match(textOf(whole), /^stdio-agent \(pid \d+\) heard: hello$/)
  const stream = client.messages.stream(ask('hello stream'))
  const deltas: string[] = []
  stream.on('text', (d) => deltas.push(d))
  const final = await stream.finalMessage()
  assert.ok(deltas.length > 1, 'the answer arrived in several deltas')
  assert.equal(deltas.join(''), textOf(final))
  assert.equal(pidIn(textOf(final)), pidIn(textOf(whole)), 'the same child answered both')
  assert.deepEqual([...orch.dispatcher.accounts[0].childPids], [pidIn(textOf(whole))], 'the main thread knows the child')
})

test('stdio runs maxConcurrency requests at once over one pipe', async (t) => {
  const { client, orch } = await start(t, { accounts: [stdioAccount('a', {}, { maxConcurrency: 3 })], dispatcher: { accountQueueSize: 8 } })
  const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => client.messages.create(ask(`n${i} [[sleep 300]]`))))
  for (const [i, a] of answers.entries()) assert.match(textOf(a), new RegExp(`heard: n${i} `), 'each answer went to its own request')
  assert.equal(new Set(answers.map((a) => pidIn(textOf(a)))).size, 1, 'one child served them all')
  const stats = await orch.dispatcher.accounts[0].stats()
  assert.equal(stats.peakRunning, 3)
})

test('a misbehaving stdio child is answered with a clear error, never a hang', async (t) => {
  const { client } = await start(t, { health: { outlierDetection: false }, accounts: [stdioAccount('a', { idleTimeoutMs: 1_500 }, { maxConcurrency: 8 })] })
  const err429 = await apiError(client.messages.create(ask('[[error rate_limit_error]] [[retry-after 3]]')))
  assert.equal(err429.status, 429)
  assert.equal(err429.headers?.get('retry-after'), '3')
  const silent = await apiError(client.messages.create(ask('[[silent]]')))
  assert.equal(silent.status, 504)
  const auth = await apiError(client.messages.create(ask('[[error authentication_error]]')))
  assert.equal(auth.status, 401)
  const partial = await apiError(client.messages.create(ask('[[partial]]')))
  assert.equal(partial.status, 504, 'half a line is never taken for an answer')
  // the unfinished line swallows the start of the next one: a protocol error, so the child is replaced
  const next = await apiError(client.messages.create(ask('[[error authentication_error]]')))
  assert.equal(next.status, 502)
  await eventually(async () => {
    try { await client.messages.create(ask('again')); return true } catch { return false }
  }, 'the account serves again')
})

test('a stdio child that breaks the protocol is restarted and the account serves again', async (t) => {
  const { client } = await start(t, { accounts: [stdioAccount('a')] })
  const before = pidIn(textOf(await client.messages.create(ask('first'))))
  const err = await apiError(client.messages.create(ask('[[garbage]]')))
  assert.equal(err.status, 502)
  let after = 0
  await eventually(async () => {
    try { after = pidIn(textOf(await client.messages.create(ask('again')))); return true } catch { return false }
  }, 'the account serves again')
  assert.notEqual(after, before, 'a new child answered')
  assert.equal(isAlive(before), false)
})

test('a stdio child that crashes mid-stream fails its requests and is restarted', async (t) => {
  const { client } = await start(t, { accounts: [stdioAccount('a')] })
  const stream = client.messages.stream(ask('[[crash]]'))
  const err = await apiError(stream.finalMessage())
  assert.equal((err.error as { error: { type: string } }).error.type, 'api_error')
  await eventually(async () => {
    try { await client.messages.create(ask('again')); return true } catch { return false }
  }, 'the account serves again')
})

test('a killed stdio child is restarted and its account serves again', async (t) => {
  const { client, orch } = await start(t, { accounts: [stdioAccount('a')], health: { heartbeatMs: 100 } })
  const account = orch.dispatcher.accounts[0]
  const first = pidIn(textOf(await client.messages.create(ask('before'))))
  const inFlight = client.messages.create(ask('[[sleep 5000]]'))
  await new Promise((r) => setTimeout(r, 100))
  process.kill(first, 'SIGKILL')
  const err = await apiError(inFlight)
  assert.equal(err.status, 502, 'the request in flight failed at once, not at its timeout')
  let second = 0
  await eventually(async () => {
    try { second = pidIn(textOf(await client.messages.create(ask('after')))); return true } catch { return false }
  }, 'the account serves again')
  assert.notEqual(second, first)
  await eventually(() => account.lastHeartbeat?.childPid === second && account.lastHeartbeat.restarts === 1, 'the heartbeat reports the new child and one restart')
})

test('a stdio child that keeps dying marks the account failed, and requests fail fast', async (t) => {
  const { client, orch } = await start(t, {
    accounts: [stdioAccount('a', { args: ['--no-pong'], startTimeoutMs: 150, restart: { initialDelayMs: 20, maxDelayMs: 50, burst: 3, windowMs: 10_000 } })],
    health: { heartbeatMs: 100 },
  })
  const account = orch.dispatcher.accounts[0]
  await eventually(() => account.lastHeartbeat?.restarts === 3 && account.lastHeartbeat.childAlive === false, 'three starts, then no more', 5_000)
  const started = Date.now()
  const err = await apiError(client.messages.create(ask('anyone there?')))
  assert.equal(err.status, 529, `no account can serve: the only one has failed (${err.message})`)
  assert.match((err.error as { error: { message: string } }).error.message, /a: session failed/)
  assert.match(account.lastHeartbeat?.lastError ?? '', /did not start/)
  assert.ok(Date.now() - started < 1_000, 'failed fast')
  await new Promise((r) => setTimeout(r, 300))
  assert.equal(account.lastHeartbeat?.restarts, 3, 'no restart after the account failed')
  // an operator's reset starts it afresh (this child still cannot start, so it fails again after three more)
  const reset = await fetch(`${orch.url}/admin/accounts/a/reset`, { method: 'POST' })
  assert.equal(reset.status, 200)
  await eventually(() => (account.lastHeartbeat?.restarts ?? 0) >= 6, 'the reset account started again', 5_000)
})

test('a stdio child that ignores SIGTERM is killed by the group SIGKILL when the orchestrator stops', async (t) => {
  const { client, orch } = await start(t, { accounts: [stdioAccount('a', { args: ['--ignore-sigterm'] })] })
  const pid = pidIn(textOf(await client.messages.create(ask('hi'))))
  await orch.close(500)
  assert.equal(isAlive(pid), false)
})
