/**
 * `dispatcher.lazyWorkers`: an account's worker starts at its first request, and with `idleMs` stops again after that
 * long without one. Real orchestrator, real worker threads, real stdio children; the official SDK as client.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { eventually, hello, isAlive, mockAccounts, start, textOf } from './helpers/orchestrator.ts'

const AGENT = new URL('./fixtures/stdio-agent.mjs', import.meta.url).pathname
const pidIn = (text: string): number => Number(/pid (\d+)/.exec(text)?.[1])

test('with lazy workers no account has a worker until a request comes, and that request is answered', async (t) => {
  const { client, orch } = await start(t, {
    dispatcher: { strategy: 'round-robin', lazyWorkers: { enabled: true } },
    accounts: mockAccounts(3),
  })
  const accounts = orch.dispatcher.accounts
  assert.deepEqual(accounts.map((a) => [a.state, a.parked]), [['up', true], ['up', true], ['up', true]], 'ready without workers')

  const { data, response } = await client.messages.create(hello).withResponse()
  assert.equal(data.type, 'message')
  const served = response.headers.get('x-agyc-account')
  assert.deepEqual(accounts.filter((a) => !a.parked).map((a) => a.id), [served], 'only the account that served has a worker')

  // a stream that wakes the next account is streamed as usual
  const stream = client.messages.stream(hello)
  let deltas = 0
  stream.on('text', () => deltas++)
  const message = await stream.finalMessage()
  assert.ok(deltas > 0 && textOf(message).length > 0)
  assert.equal(accounts.filter((a) => !a.parked).length, 2)
})

test('a burst spread over many parked accounts starts at most 8 workers at a time, and every request is answered', async (t) => {
  const { client, orch } = await start(t, {
    dispatcher: { strategy: 'round-robin', lazyWorkers: { enabled: true } },
    accounts: mockAccounts(20, {}, { maxConcurrency: 1 }),
  })
  const accounts = orch.dispatcher.accounts
  let mostStarting = 0
  const sampler = setInterval(() => {
    mostStarting = Math.max(mostStarting, accounts.filter((a) => a.state === 'starting').length)
  }, 2)
  const answers = await Promise.all(Array.from({ length: 20 }, () => client.messages.create(hello)))
  clearInterval(sampler)
  assert.ok(answers.every((a) => a.type === 'message'))
  assert.ok(mostStarting > 0 && mostStarting <= 8, `${mostStarting} workers were starting at once`)
})

test('an idle worker stops after idleMs and the next request starts a new one; the account stays up throughout', async (t) => {
  const { client, orch, logs } = await start(t, {
    dispatcher: { lazyWorkers: { enabled: true, idleMs: 200 } },
    health: { heartbeatMs: 50 },
    accounts: mockAccounts(1),
  })
  const [account] = orch.dispatcher.accounts
  await client.messages.create(hello)
  assert.equal(account.parked, false)
  await eventually(() => account.parked, 'the idle worker stops', 5_000)
  assert.equal(account.state, 'up')
  assert.equal(account.health.consecutiveFailures, 0, 'stopping an idle worker is no failure')
  assert.equal(account.outlier.state(), 'ok')

  // stopped and started again, several times, with requests at once after each stop
  for (let i = 0; i < 3; i++) {
    const answers = await Promise.all(Array.from({ length: 6 }, () => client.messages.create(hello)))
    assert.ok(answers.every((a) => a.type === 'message'))
    await eventually(() => account.parked, 'the idle worker stops again', 5_000)
  }
  assert.equal(account.workerRestarts, 0, 'no worker died')
  assert.equal(account.health.consecutiveFailures, 0)
  assert.deepEqual(logs.filter((l) => (l.level as number) >= 50).map((l) => l.msg), [], 'no error was logged')
})

test('a lazy stdio account starts its child at the first request and stops it with the idle worker', async (t) => {
  const { client, orch } = await start(t, {
    dispatcher: { lazyWorkers: { enabled: true, idleMs: 300 } },
    health: { heartbeatMs: 50 },
    accounts: [{
      id: 'cli', maxConcurrency: 2,
      session: { kind: 'stdio', command: 'node', args: [AGENT], idleTimeoutMs: 5_000, killGraceMs: 300, startTimeoutMs: 5_000 },
    }],
  })
  const [account] = orch.dispatcher.accounts
  assert.equal(account.childPids.size, 0, 'no child before the first request')
  const first = pidIn(textOf(await client.messages.create({ ...hello, messages: [{ role: 'user', content: 'one' }] })))
  assert.ok(isAlive(first))
  await eventually(() => account.parked, 'the idle worker stops', 5_000)
  await eventually(() => !isAlive(first), 'its child is gone with it', 5_000)
  const second = pidIn(textOf(await client.messages.create({ ...hello, messages: [{ role: 'user', content: 'two' }] })))
  assert.notEqual(second, first, 'a new worker, a new child')
})
