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

/** the account's row of GET /admin/accounts, over HTTP */
async function status(url: string, id: string): Promise<{ state: string; health: { session: string }; lastError: string | null }> {
  const body = await (await fetch(`${url}/admin/accounts`)).json() as { accounts: { id: string; state: string; health: { session: string }; lastError: string | null }[] }
  return body.accounts.find((a) => a.id === id)!
}

test('a stdio account whose child failed its first start takes no work until the child is back; a request waits for it', async (t) => {
  // the first start exits at once; the restart comes ~1 s later: long enough for a request to arrive meanwhile
  const { client, url, orch } = await start(t, {
    accounts: [stdioAccount('a', { args: ['--fail-starts', '1'], restart: { initialDelayMs: 1_000, maxDelayMs: 1_000 } })],
  })
  // the worker is ready, but its session reported the failed start before that: `ready` must not make it look up
  const row = await status(url, 'a')
  assert.equal(row.state, 'up')
  assert.equal(row.health.session, 'restarting', 'the account shows its child restarting, not up')
  assert.match(row.lastError ?? '', /code 3/)
  const answer = await client.messages.create(ask('are you back?')).withResponse()
  assert.match(textOf(answer.data), /^stdio-agent \(pid \d+\) heard: are you back\?$/, 'served by the restarted child')
  assert.equal(answer.response.headers.get('x-agyc-attempts'), null, 'it waited for the account; it was never sent to the restarting child')
  const stats = await orch.dispatcher.accounts[0].stats()
  assert.deepEqual([stats.served, stats.failed], [1, 0], 'the worker never failed a request for lack of a child')
})

test('a stdio child that keeps dying marks the account failed, and requests fail fast until an operator resets it', async (t) => {
  const { client, url, orch } = await start(t, {
    accounts: [stdioAccount('a', { args: ['--fail-starts', '4'], restart: { initialDelayMs: 300, maxDelayMs: 300, burst: 3, windowMs: 10_000 } })],
    health: { heartbeatMs: 200 },
  })
  const account = orch.dispatcher.accounts[0]
  // sent while the child is still restarting: it waits, and is answered as soon as the account is failed (never a 502
  // from a child that is not there)
  const early = await apiError(client.messages.create(ask('anyone there?')))
  assert.equal(early.status, 529, `no account can serve: the only one has failed (${early.message})`)
  assert.equal((early.error as { error: { type: string } }).error.type, 'overloaded_error')
  assert.match((early.error as { error: { message: string } }).error.message, /a: session failed/)
  assert.equal((await status(url, 'a')).health.session, 'failed')
  const started = Date.now()
  const late = await apiError(client.messages.create(ask('still nobody?')))
  assert.equal(late.status, 529)
  assert.ok(Date.now() - started < 1_000, 'failed fast')
  // heartbeats after the failure (every 200 ms) still count three exits
  const seenAt = Date.now()
  await eventually(() => (account.lastHeartbeat?.at ?? 0) > seenAt + 300, 'two more heartbeats')
  assert.equal((await account.stats()).failed, 0, 'no request reached the worker of a failed account')
  assert.equal(account.lastHeartbeat?.restarts, 3, 'no restart after the account failed')
  // an operator's reset starts the child afresh; the account is restarting again, so requests wait for it (the fourth
  // start fails too, the fifth succeeds ~0.3 s later) and it serves again
  const reset = await fetch(`${url}/admin/accounts/a/reset`, { method: 'POST' })
  assert.equal(reset.status, 200)
  await eventually(async () => (await status(url, 'a')).health.session === 'restarting', 'the reset account is restarting, no longer failed')
  assert.equal(account.health.consecutiveFailures, 1, 'the whole outage counted once against the account')
  assert.match(textOf(await client.messages.create(ask('back?'))), /heard: back\?$/, 'a request sent while it restarts waits and is served')
  assert.equal((await status(url, 'a')).health.session, 'up')
})

test('a stdio child that never becomes ready is restarted, then the account fails with the reason', async (t) => {
  const { client, url, orch } = await start(t, {
    accounts: [stdioAccount('a', { args: ['--no-pong'], startTimeoutMs: 150, restart: { initialDelayMs: 20, maxDelayMs: 50, burst: 2, windowMs: 10_000 } })],
  })
  await eventually(async () => (await status(url, 'a')).health.session === 'failed', 'the account is failed', 5_000)
  const err = await apiError(client.messages.create(ask('anyone there?')))
  assert.equal(err.status, 529)
  assert.match(orch.dispatcher.accounts[0].lastHeartbeat?.lastError ?? '', /did not start: no pong within 150 ms/)
})

test('a stdio child\'s stderr reaches the logs line by line, bounded', async (t) => {
  const { client, logs } = await start(t, { accounts: [stdioAccount('a')] })
  await client.messages.create(ask('[[stderr 3]]'))
  await eventually(() => logs.filter((l) => l.msg === 'child stderr').length === 3, 'three stderr records')
  const lines = logs.filter((l) => l.msg === 'child stderr')
  assert.deepEqual(lines.map((l) => l.line), [1, 2, 3].map((i) => `stdio-agent: stderr line ${i} of 3`))
  assert.ok(lines.every((l) => l.account === 'a' && typeof l.childPid === 'number'), 'each names its account and child')
  // a flood is cut to a budget per second, and the cut is said
  await client.messages.create(ask('[[stderr 500]]'))
  await eventually(() => logs.some((l) => l.msg === 'child stderr lines dropped'), 'the dropped lines are reported', 3_000)
  assert.ok(logs.filter((l) => l.msg === 'child stderr').length < 100, 'far fewer records than lines')
})

test('a stdio account\'s worker that is replaced takes its child with it: the main thread kills the group', async (t) => {
  // --ignore-eof: the child would outlive its worker thread (architecture findings) if the main thread did not kill it
  const { client, orch } = await start(t, { accounts: [stdioAccount('a', { args: ['--ignore-eof'] })] })
  const account = orch.dispatcher.accounts[0]
  const first = pidIn(textOf(await client.messages.create(ask('before'))))
  const inFlight = client.messages.create(ask('[[sleep 5000]]'))
  await new Promise((r) => setTimeout(r, 100))
  account.terminate('test: as the watchdog does when heartbeats stop')
  const err = await apiError(inFlight)
  assert.equal(err.status, 502, 'the request in flight got a definite error')
  await eventually(() => !isAlive(first), `the old child ${first} is gone`, 2_000)
  let second = 0
  await eventually(async () => {
    try { second = pidIn(textOf(await client.messages.create(ask('after')))); return true } catch { return false }
  }, 'the replaced worker serves with a new child')
  assert.notEqual(second, first)
  assert.ok(account.workerRestarts >= 1)
})

test('a stdio child that ignores SIGTERM is killed by the group SIGKILL when the orchestrator stops', async (t) => {
  const { client, orch } = await start(t, { accounts: [stdioAccount('a', { args: ['--ignore-sigterm'] })] })
  const pid = pidIn(textOf(await client.messages.create(ask('hi'))))
  await orch.close(500)
  assert.equal(isAlive(pid), false)
})
