import assert from 'node:assert/strict'
import { request as httpRequest } from 'node:http'
import { test } from 'node:test'
import Anthropic from '@anthropic-ai/sdk'
import { eventually, hello, mockAccounts, post, start } from './helpers/orchestrator.ts'
import { parseConfig } from '../src/config/load.ts'

test('under 200 concurrent requests no account runs more than its limit and none is refused', async (t) => {
  const defaults = parseConfig({ accounts: mockAccounts(1) }, '/tmp')
  const { client, orch } = await start(t, { accounts: mockAccounts(4, { latencyMs: 15 }, { maxConcurrency: 3 }) })
  const results = await Promise.allSettled(Array.from({ length: 200 }, (_, i) =>
    client.messages.create({ ...hello, stream: i % 2 === 0 } as typeof hello)))
  const failed = results.filter((r) => r.status === 'rejected')
  assert.equal(failed.length, 0, `refused: ${failed.map((f) => String((f as PromiseRejectedResult).reason)).slice(0, 3)}`)
  for (const account of orch.dispatcher.accounts) {
    const stats = await account.stats()
    assert.ok(stats.peakRunning <= 3, `${account.id} ran ${stats.peakRunning} at once (limit 3)`)
    assert.ok(stats.served > 0, `${account.id} served some`)
  }
  assert.ok(defaults.dispatcher.globalQueueSize >= 200, 'the default queue takes 200 waiting requests')
})

test('a full global queue answers 529 overloaded_error with an integer retry-after, at once', async (t) => {
  const { client, url } = await start(t, {
    dispatcher: { globalQueueSize: 2, accountQueueSize: 0 },
    accounts: mockAccounts(1, { latencyMs: 800 }, { maxConcurrency: 1 }),
  })
  const running = [client.messages.create(hello), client.messages.create(hello), client.messages.create(hello)] // 1 runs, 2 wait
  await new Promise((r) => setTimeout(r, 100))
  const startedAt = Date.now()
  const res = await post(url, '/v1/messages', JSON.stringify(hello))
  assert.ok(Date.now() - startedAt < 500, 'answered at once')
  assert.equal(res.status, 529)
  assert.equal(res.json.error.type, 'overloaded_error')
  assert.match(res.headers.get('retry-after') ?? '', /^\d+$/)
  const done = await Promise.allSettled(running)
  assert.deepEqual(done.map((d) => d.status), ['fulfilled', 'fulfilled', 'fulfilled'], 'the queued ones were served')
})

test('a request that waits longer than queueTimeoutMs gets a 529 and the queue moves on', async (t) => {
  const { client, url } = await start(t, {
    dispatcher: { queueTimeoutMs: 200, accountQueueSize: 0 },
    accounts: mockAccounts(1, { latencyMs: 700 }, { maxConcurrency: 1 }),
  })
  const first = client.messages.create(hello)
  await new Promise((r) => setTimeout(r, 50))
  const waited = await post(url, '/v1/messages', JSON.stringify(hello))
  assert.equal(waited.status, 529)
  assert.match(waited.json.error.message, /200 ms/)
  await first
})

test('a request over requestTimeoutMs gets 504 timeout_error and its slot is freed', async (t) => {
  const { url, orch, client } = await start(t, {
    dispatcher: { requestTimeoutMs: 300 },
    accounts: mockAccounts(1, { directives: true }, { maxConcurrency: 1 }),
  })
  const slow = { ...hello, messages: [{ role: 'user', content: '[[mock:sleep 5000]]' }] }
  const res = await post(url, '/v1/messages', JSON.stringify(slow))
  assert.equal(res.status, 504)
  assert.equal(res.json.error.type, 'timeout_error')
  await client.messages.create(hello) // the only slot is free again
  assert.equal((await orch.dispatcher.accounts[0].stats()).cancelled, 1)
})

test('a client that disconnects frees its slot at once, queued or running', async (t) => {
  const { orch, url } = await start(t, {
    dispatcher: { accountQueueSize: 0 },
    accounts: mockAccounts(1, { latencyMs: 10_000 }, { maxConcurrency: 1 }),
  })
  const account = orch.dispatcher.accounts[0]
  const target = new URL(url)
  const open = () => {
    const req = httpRequest({ host: target.hostname, port: target.port, path: '/v1/messages', method: 'POST', headers: { 'content-type': 'application/json' } })
    req.on('error', () => {})
    req.end(JSON.stringify(hello))
    return req
  }
  const running = open()
  const queued = open()
  await eventually(() => account.assigned === 1 && orch.dispatcher.queued === 1, 'one running, one queued')
  queued.destroy()
  await eventually(() => orch.dispatcher.queued === 0, 'the queued request left the queue')
  running.destroy()
  await eventually(() => account.assigned === 0, 'the running request freed its slot')
  await eventually(async () => (await account.stats()).running === 0, 'the worker stopped it too')
  assert.equal((await account.stats()).cancelled, 1, 'the running one was cancelled in the worker; the queued one never got there')
})

test('a worker that dies is replaced and its in-flight requests get a definite error', async (t) => {
  // eager: the thread that dies is the one started with the account (a mock account would otherwise start parked)
  const { client, orch } = await start(t, { dispatcher: { lazyWorkers: { enabled: false } }, accounts: mockAccounts(1, { directives: true, latencyMs: 0 }) })
  const account = orch.dispatcher.accounts[0]
  const before = (await account.stats()).threadId
  const crash = { ...hello, messages: [{ role: 'user' as const, content: '[[mock:crash]]' }] }
  const is502 = (err: unknown) => err instanceof Anthropic.APIError && err.status === 502
  const sleeping = assert.rejects(client.messages.create({ ...hello, messages: [{ role: 'user', content: '[[mock:sleep 3000]]' }] }), is502)
  await assert.rejects(client.messages.create(crash), is502)
  await sleeping
  await eventually(() => account.state === 'up', 'the account is back up')
  const after = await client.messages.create(hello)
  assert.equal(after.type, 'message')
  assert.notEqual((await account.stats()).threadId, before, 'a new thread serves')
  assert.equal(account.workerRestarts, 1)
})
