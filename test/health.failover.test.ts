import assert from 'node:assert/strict'
import { test } from 'node:test'
import Anthropic from '@anthropic-ai/sdk'
import { eventually, hello, mockAccounts, post, start } from './helpers/orchestrator.ts'

const ask = (content: string, extra: object = {}) => ({ ...hello, messages: [{ role: 'user' as const, content }], ...extra })
/** one sample of the Prometheus text (0 when absent): counters are per process, so tests compare before and after */
async function metric(url: string, series: string): Promise<number> {
  const line = (await (await fetch(`${url}/metrics`)).text()).split('\n').find((l) => l.startsWith(series + ' '))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}

const two = (session: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => mockAccounts(2, { directives: true, ...session }, extra)

test('a session that fails before answering is retried on another account', async (t) => {
  const { client, orch } = await start(t, { accounts: two() })
  for (const stream of [false, true, false, true]) {
    // whichever account round-robin picks first, acc02 answers: acc01 fails every such request
    const { data, response } = await client.messages.create(ask('[[mock:fail AGYC_UPSTREAM_FAILED @acc01]]', { stream })).withResponse()
    assert.equal(response.headers.get('x-agyc-account'), 'acc02')
    if (!stream) assert.match((data as Anthropic.Message).content.map((b) => (b as { text: string }).text).join(''), /acc02/)
  }
  assert.ok(orch.dispatcher.accounts[0].failovers >= 2, `acc01 handed on ${orch.dispatcher.accounts[0].failovers} requests`)
})

test('a failure after answer bytes reached the client ends the stream with an Anthropic error event', async (t) => {
  const { url } = await start(t, { accounts: two() })
  const res = await post(url, '/v1/messages', JSON.stringify(ask('[[mock:midfail]]', { stream: true })))
  assert.equal(res.status, 200)
  const events = [...res.text.matchAll(/^event: (\w+)$/gm)].map((m) => m[1])
  assert.deepEqual(events.slice(0, 4), ['message_start', 'content_block_start', 'ping', 'content_block_delta'])
  assert.equal(events.at(-1), 'error')
  const last = JSON.parse(res.text.trim().split('\n').at(-1)!.slice('data: '.length))
  assert.equal(last.type, 'error')
  assert.equal(last.error.type, 'api_error')
})

test('the SDK sees a mid-stream failure as an error, never a silent truncation', async (t) => {
  const { client } = await start(t, { accounts: two() })
  await assert.rejects(client.messages.stream(ask('[[mock:midfail]]')).finalMessage(), Anthropic.APIError)
})

test('a stream waits behind pings while the session is slow, and can still fail over', async (t) => {
  const { url } = await start(t, { dispatcher: { streamHoldMs: 50, pingIntervalMs: 100 }, accounts: two() })
  const res = await post(url, '/v1/messages', JSON.stringify(ask('[[mock:sleep 400 @acc01]][[mock:fail AGYC_UPSTREAM_FAILED @acc01]]', { stream: true })))
  assert.equal(res.status, 200)
  const events = [...res.text.matchAll(/^event: (\w+)$/gm)].map((m) => m[1])
  assert.ok(events.indexOf('message_start') >= 2, `pings came first: ${events.slice(0, 4)}`)
  assert.deepEqual(events.slice(0, events.indexOf('message_start')).every((e) => e === 'ping'), true)
  assert.equal(events.at(-1), 'message_stop', 'acc02 answered after acc01 failed')
  const text = [...res.text.matchAll(/"text_delta","text":"([^"]*)"/g)].map((m) => m[1]).join('')
  assert.match(text, /^Hello from acc02/)
})

test('a 429 puts the account in cooldown for its retry-after; the other serves meanwhile', async (t) => {
  const { client, orch, url } = await start(t, { accounts: two() })
  const cooldowns = await metric(url, 'agyc_cooldowns_total{account="acc01"}')
  const failovers = await metric(url, 'agyc_failovers_total{account="acc01"}')
  const { response } = await client.messages.create(ask('[[mock:fail AGYC_UPSTREAM_RATE_LIMITED 1 @acc01]]')).withResponse()
  assert.equal(response.headers.get('x-agyc-account'), 'acc02', 'failed over')
  const acc01 = orch.dispatcher.accounts[0]
  assert.equal(acc01.outlier.state(), 'cooling')
  // the operator sees it: the cooldown's end and the cause in /admin/accounts, the counts in /metrics
  const status = (await (await fetch(`${url}/admin/accounts`)).json() as { accounts: { id: string; cooldownUntil: number | null; lastError: string | null; health: Record<string, unknown> }[] }).accounts
  const row = status.find((a) => a.id === 'acc01')!
  assert.ok(row.cooldownUntil !== null && row.cooldownUntil > Date.now(), `cooldownUntil ${row.cooldownUntil}`)
  assert.match(row.lastError ?? '', /AGYC_UPSTREAM_RATE_LIMITED/)
  assert.equal(row.health.outlier, 'cooling')
  for (const part of ['freshness', 'success', 'latency', 'loop', 'streak']) assert.equal(typeof row.health[part], 'number', `score part ${part}`)
  assert.equal(await metric(url, 'agyc_cooldowns_total{account="acc01"}'), cooldowns + 1)
  assert.equal(await metric(url, 'agyc_failovers_total{account="acc01"}'), failovers + 1)
  for (let i = 0; i < 4; i++) {
    const r = await client.messages.create(hello).withResponse()
    assert.equal(r.response.headers.get('x-agyc-account'), 'acc02')
  }
  await eventually(() => acc01.outlier.state() === 'ok', 'cooldown over', 3000)
  const served = new Set<string>()
  for (let i = 0; i < 4; i++) served.add((await client.messages.create(hello).withResponse()).response.headers.get('x-agyc-account')!)
  assert.deepEqual([...served].sort(), ['acc01', 'acc02'])
  assert.equal(acc01.health.consecutiveFailures, 0, 'a throttle is not a failure')
})

test('when every account is cooling the answer is 529 with retry-after at the soonest recovery', async (t) => {
  const { url, client } = await start(t, { accounts: two() })
  await assert.rejects(client.messages.create(ask('[[mock:fail AGYC_UPSTREAM_RATE_LIMITED 7 @acc01]][[mock:fail AGYC_UPSTREAM_RATE_LIMITED 3 @acc02]]')),
    (err: unknown) => err instanceof Anthropic.RateLimitError)
  const res = await post(url, '/v1/messages', JSON.stringify(hello))
  assert.equal(res.status, 529)
  assert.equal(res.json.error.type, 'overloaded_error')
  assert.equal(res.headers.get('retry-after'), '3')
})

test('consecutive failures eject an account; after the ejection time one probe brings it back', async (t) => {
  const { client, orch, url } = await start(t, {
    health: { consecutiveFailures: 3, ejectionBaseMs: 600 },
    dispatcher: { maxAttempts: 1 },
    accounts: two(),
  })
  const acc01 = orch.dispatcher.accounts[0]
  const ejections = await metric(url, 'agyc_ejections_total{account="acc01"}')
  for (let i = 0; i < 6 && acc01.outlier.ejections === 0; i++) {
    await client.messages.create(ask('[[mock:fail AGYC_UPSTREAM_FAILED @acc01]]')).catch(() => {})
  }
  assert.equal(acc01.outlier.state(), 'ejected')
  assert.equal(await metric(url, 'agyc_ejections_total{account="acc01"}'), ejections + 1)
  for (let i = 0; i < 4; i++) {
    assert.equal((await client.messages.create(hello).withResponse()).response.headers.get('x-agyc-account'), 'acc02')
  }
  await eventually(() => acc01.outlier.state() === 'half-open', 'half-open', 2000)
  const served: string[] = []
  for (let i = 0; i < 4; i++) served.push((await client.messages.create(hello).withResponse()).response.headers.get('x-agyc-account')!)
  assert.ok(served.includes('acc01'), 'the probe succeeded and acc01 is back')
  assert.equal(acc01.outlier.state(), 'ok')
})

test('our own 529s and 4xx answers never count against an account', async (t) => {
  const { url, orch, client } = await start(t, {
    dispatcher: { globalQueueSize: 0, accountQueueSize: 0 },
    accounts: mockAccounts(1, { directives: true, latencyMs: 300 }, { maxConcurrency: 1 }),
  })
  const busy = client.messages.create(hello)
  await new Promise((r) => setTimeout(r, 50))
  for (let i = 0; i < 6; i++) assert.equal((await post(url, '/v1/messages', JSON.stringify(hello))).status, 529)
  await busy
  await client.messages.create(ask('[[mock:fail AGYC_UPSTREAM_REJECTED]]')).catch(() => {})
  const account = orch.dispatcher.accounts[0]
  assert.equal(account.health.consecutiveFailures, 0)
  assert.equal(account.outlier.state(), 'ok')
})

test('what counts against an account: its 5xx, its refused credentials, a stream cut by it; never the request\'s 4xx, a throttle or a client that left', async (t) => {
  const { url, client } = await start(t, {
    health: { consecutiveFailures: 50 }, // counted, not ejected: each outcome is read from the account's record
    accounts: [{ id: 'counted', maxConcurrency: 2, session: { kind: 'mock', directives: true, deltas: 4, deltaDelayMs: 20 } }],
  })
  const record = async (): Promise<{ failures: number; outlier: string }> => {
    const body = await (await fetch(`${url}/admin/accounts`)).json() as { accounts: { health: { consecutiveFailures: number; outlier: string } }[] }
    return { failures: body.accounts[0].health.consecutiveFailures, outlier: body.accounts[0].health.outlier }
  }
  const cases: [code: string, counts: boolean, status: number][] = [
    ['AGYC_UPSTREAM_FAILED', true, 502],
    ['AGYC_UPSTREAM_TIMEOUT', true, 504],
    ['AGYC_UPSTREAM_AUTH', true, 401], // the account's key or login, not the client's (issue 8's decision)
    ['AGYC_UPSTREAM_FORBIDDEN', true, 403],
    ['AGYC_UPSTREAM_REJECTED', false, 400],
    ['AGYC_UPSTREAM_NOT_FOUND', false, 404],
    ['AGYC_UPSTREAM_TOO_LARGE', false, 413],
  ]
  let expected = 0
  for (const [code, counts, status] of cases) {
    const err = await client.messages.create(ask(`[[mock:fail ${code}]]`)).catch((e: unknown) => e)
    assert.ok(err instanceof Anthropic.APIError && err.status === status, `${code} is answered ${status}`)
    if (counts) expected++
    assert.deepEqual(await record(), { failures: expected, outlier: 'ok' }, `${code} ${counts ? 'counts' : 'does not count'}`)
  }
  // a throttle cools the account down without counting as a failure; an operator's reset clears the cooldown
  for (const code of ['AGYC_UPSTREAM_RATE_LIMITED', 'AGYC_UPSTREAM_OVERLOADED']) {
    await client.messages.create(ask(`[[mock:fail ${code} 30]]`)).catch(() => {})
    assert.deepEqual(await record(), { failures: expected, outlier: 'cooling' }, `${code} is a throttle`)
    assert.equal((await fetch(`${url}/admin/accounts/counted/reset`, { method: 'POST' })).status, 200)
  }
  // a stream the session cuts after answer bytes went out counts
  const cut = client.messages.stream(ask('[[mock:midfail]]'))
  await assert.rejects(cut.finalMessage())
  assert.deepEqual(await record(), { failures: ++expected, outlier: 'ok' }, 'a stream cut by the session counts')
  // a client that leaves mid-answer does not
  const controller = new AbortController()
  const left = client.messages.create(ask('[[mock:sleep 2000]]'), { signal: controller.signal })
  await new Promise((r) => setTimeout(r, 100))
  controller.abort()
  await assert.rejects(left)
  await new Promise((r) => setTimeout(r, 100))
  assert.deepEqual(await record(), { failures: expected, outlier: 'ok' }, 'a client that left does not count')
  // and a success ends the streak
  await client.messages.create(hello)
  assert.equal((await record()).failures, 0)
})

test('a worker that stops heartbeating is terminated and replaced; its requests fail over', async (t) => {
  // eager: both workers live and heartbeating before the first request (mock accounts would otherwise start parked)
  const { client, orch } = await start(t, {
    dispatcher: { lazyWorkers: { enabled: false } }, health: { heartbeatMs: 100, missedHeartbeats: 3 }, accounts: two({ latencyMs: 200 }),
  })
  const acc01 = orch.dispatcher.accounts[0]
  const threadBefore = (await acc01.stats()).threadId
  // round-robin: a normal request runs on acc01 (200 ms), one on acc02, then a hang freezes acc01's event loop
  const normal = client.messages.create(hello).withResponse()
  await new Promise((r) => setTimeout(r, 20))
  const other = client.messages.create(hello).withResponse()
  await new Promise((r) => setTimeout(r, 20))
  const hang = client.messages.create(ask('[[mock:hang @acc01]]')).withResponse()
  const [a, , c] = await Promise.all([normal, other, hang])
  assert.equal(a.response.headers.get('x-agyc-account'), 'acc02', 'the request stuck on acc01 failed over')
  assert.equal(c.response.headers.get('x-agyc-account'), 'acc02', 'the hanging request failed over')
  await eventually(() => acc01.state === 'up', 'acc01 replaced and up again', 5000)
  assert.notEqual((await acc01.stats()).threadId, threadBefore)
  assert.ok(acc01.workerRestarts >= 1)
})

test('with no retry budget a failure is answered, not retried', async (t) => {
  const { client, orch } = await start(t, { dispatcher: { retryBudgetMin: 0, retryBudgetPercent: 0 }, accounts: two() })
  await assert.rejects(client.messages.create(ask('[[mock:fail AGYC_UPSTREAM_FAILED @acc01]]')),
    (err: unknown) => err instanceof Anthropic.APIError && err.status === 502)
  assert.equal(orch.dispatcher.accounts[0].failovers, 0)
})

test('an error answered after a failover says how many attempts it took', async (t) => {
  const { url } = await start(t, { accounts: two() })
  const res = await post(url, '/v1/messages', JSON.stringify(ask('[[mock:fail AGYC_UPSTREAM_FAILED]]')))
  assert.equal(res.status, 502)
  assert.equal(res.headers.get('x-agyc-attempts'), '2', 'both accounts were tried')
  assert.match(res.headers.get('x-agyc-account') ?? '', /^acc0[12]$/)
})
