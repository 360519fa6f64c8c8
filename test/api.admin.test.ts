import assert from 'node:assert/strict'
import { test } from 'node:test'
import { eventually, hello, post, start } from './helpers/orchestrator.ts'
import { runAgyc } from './helpers/process.ts'

// metrics live in one registry per process: each test uses its own account ids so its series are its own
const accounts = (prefix: string, n: number, session: Record<string, unknown> = {}) =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i + 1}`, maxConcurrency: 2, session: { kind: 'mock', ...session } }))

async function getJson(url: string): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url)
  return { status: res.status, json: await res.json(), headers: res.headers }
}

/** the value of one sample line of the Prometheus text, e.g. `agyc_requests_total{account="a1",status="200",strategy="round-robin"}` */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

test('healthz and readyz answer 200 while an account is up, HEAD / answers 200', async (t) => {
  const { url } = await start(t, { accounts: accounts('probe', 1) })
  assert.equal((await fetch(`${url}/healthz`)).status, 200)
  const ready = await getJson(`${url}/readyz`)
  assert.equal(ready.status, 200)
  assert.equal(ready.json.accountsUp, 1)
  const head = await fetch(url, { method: 'HEAD' })
  assert.equal(head.status, 200)
})

test('readyz answers 503 in the error shape once every account is drained, and 200 again after resume', async (t) => {
  const { url } = await start(t, { accounts: accounts('ready', 2) })
  for (const id of ['ready1', 'ready2']) assert.equal((await post(url, `/admin/accounts/${id}/drain`, '')).status, 200)
  const res = await fetch(`${url}/readyz`)
  assert.equal(res.status, 503)
  assert.deepEqual(Object.keys(await res.json() as object), ['type', 'error'])
  assert.equal((await fetch(`${url}/healthz`)).status, 200) // alive, just not ready
  await post(url, '/admin/accounts/ready2/resume', '')
  assert.equal((await fetch(`${url}/readyz`)).status, 200)
})

test('readyz answers 503 while every account is cooling down, and 200 once one can take work again', async (t) => {
  const { url, client } = await start(t, { accounts: accounts('cool', 1, { directives: true }) })
  assert.equal((await fetch(`${url}/readyz`)).status, 200)
  const err = await client.messages.create({ ...hello, messages: [{ role: 'user', content: '[[mock:fail AGYC_UPSTREAM_RATE_LIMITED 1 @cool1]]' }] }).catch((e: { status: number }) => e)
  assert.equal((err as { status: number }).status, 429)
  const cooling = await getJson(`${url}/readyz`)
  assert.equal(cooling.status, 503, 'up as a thread, but it takes no work while it cools down')
  assert.equal(cooling.json.error.type, 'overloaded_error')
  await eventually(async () => (await fetch(`${url}/readyz`)).status === 200, 'ready again after the cooldown', 5_000)
})

test('/admin/accounts reports state, in-flight/limit, counts and p50/p99 per account', async (t) => {
  const { url, client } = await start(t, { accounts: accounts('stat', 2, { latencyMs: 5, directives: true }) })
  for (let i = 0; i < 10; i++) await client.messages.create(hello)
  const { status, json } = await getJson(`${url}/admin/accounts`)
  assert.equal(status, 200)
  assert.equal(json.accounts.length, 2)
  for (const a of json.accounts) {
    assert.equal(a.state, 'up')
    assert.equal(a.limit, 2)
    assert.equal(a.inFlight, 0)
    assert.equal(a.completed, 5) // round-robin: 5 each
    assert.ok(a.p50Ms >= 5 && a.p99Ms >= a.p50Ms, `p50 ${a.p50Ms} p99 ${a.p99Ms}`)
    assert.equal(a.restarts, 0)
    assert.equal(typeof a.healthScore, 'number')
  }

  // a request that sleeps in the session shows as in flight while it runs
  const slow = client.messages.create({ ...hello, messages: [{ role: 'user', content: '[[mock:sleep 800]]' }] })
  await eventually(async () => (await getJson(`${url}/admin/accounts`)).json.inFlight === 1, 'one request in flight')
  const during = (await getJson(`${url}/admin/accounts`)).json
  assert.equal(during.accounts.reduce((n: number, a: { inFlight: number }) => n + a.inFlight, 0), 1)
  await slow
})

test('drain takes an account out of rotation at once and resume brings it back', async (t) => {
  const { url, client } = await start(t, { accounts: accounts('drain', 2) })
  const drained = await post(url, '/admin/accounts/drain1/drain', '')
  assert.equal(drained.status, 200)
  assert.equal(drained.json.state, 'draining')
  for (let i = 0; i < 6; i++) {
    const { response } = await client.messages.create(hello).withResponse()
    assert.equal(response.headers.get('x-agyc-account'), 'drain2')
  }
  const resumed = await post(url, '/admin/accounts/drain1/resume', '')
  assert.equal(resumed.json.state, 'up')
  const served = new Set<string>()
  for (let i = 0; i < 4; i++) served.add((await client.messages.create(hello).withResponse()).response.headers.get('x-agyc-account')!)
  assert.deepEqual([...served].sort(), ['drain1', 'drain2'])
})

test('admin routes answer unknown accounts with 404 and wrong methods with 405, in the error shape', async (t) => {
  const { url } = await start(t, { accounts: accounts('route', 1) })
  const missing = await post(url, '/admin/accounts/nobody/drain', '')
  assert.equal(missing.status, 404)
  assert.equal(missing.json.error.type, 'not_found_error')
  const wrong = await fetch(`${url}/admin/accounts/route1/drain`)
  assert.equal(wrong.status, 405)
  assert.equal(wrong.headers.get('allow'), 'POST')
  assert.equal((await fetch(`${url}/admin/accounts`, { method: 'DELETE' })).status, 405)
})

test('/metrics exposes requests by account, status and strategy, errors by code, histograms and live gauges', async (t) => {
  const { url, client } = await start(t, { accounts: accounts('prom', 2) })
  for (let i = 0; i < 4; i++) await client.messages.create(hello)
  for (let i = 0; i < 2; i++) await client.messages.create({ ...hello, metadata: { routing: { strategyHint: 'lru' } } } as never)
  const stream = await client.messages.create({ ...hello, stream: true })
  for await (const _ of stream) { /* drain */ }
  const bad = await post(url, '/v1/messages', JSON.stringify({ model: 'x' }))
  assert.equal(bad.status, 400)

  const res = await fetch(`${url}/metrics`)
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/)
  const text = await res.text()
  const rr = (id: string) => sample(text, `agyc_requests_total{account="${id}",status="200",strategy="round-robin"}`) ?? 0
  assert.equal(rr('prom1') + rr('prom2'), 5)
  const lru = (id: string) => sample(text, `agyc_requests_total{account="${id}",status="200",strategy="least-recently-used"}`) ?? 0
  assert.equal(lru('prom1') + lru('prom2'), 2)
  assert.ok((sample(text, 'agyc_errors_total{code="AGYC_INVALID_REQUEST"}') ?? 0) >= 1)
  assert.ok((sample(text, 'agyc_requests_total{account="",status="400",strategy=""}') ?? 0) >= 1)
  const count = (id: string) => sample(text, `agyc_request_duration_seconds_count{account="${id}"}`) ?? 0
  assert.equal(count('prom1') + count('prom2'), 7)
  assert.equal(sample(text, 'agyc_request_duration_seconds_bucket{account="prom1",le="+Inf"}'), count('prom1'))
  assert.equal((sample(text, 'agyc_time_to_first_byte_seconds_count{account="prom1"}') ?? 0) + (sample(text, 'agyc_time_to_first_byte_seconds_count{account="prom2"}') ?? 0), 7)
  assert.ok((sample(text, 'agyc_queue_wait_seconds_count') ?? 0) >= 7)
  assert.equal(sample(text, 'agyc_queue_depth'), 0)
  assert.equal(sample(text, 'agyc_account_in_flight{account="prom1"}'), 0)
  assert.equal(sample(text, 'agyc_account_max_concurrency{account="prom2"}'), 2)
  assert.equal(sample(text, 'agyc_account_health_score{account="prom1"}'), 1)
  assert.equal(sample(text, 'agyc_account_state{account="prom1",state="up"}'), 1)
  assert.equal(sample(text, 'agyc_account_worker_restarts_total{account="prom1"}'), 0)
  for (const name of ['agyc_failovers_total', 'agyc_cooldowns_total', 'agyc_ejections_total']) assert.match(text, new RegExp(`^# TYPE ${name} counter$`, 'm'))
})

test('GET / serves the dashboard page', async (t) => {
  const { url } = await start(t, { accounts: accounts('page', 1) })
  const res = await fetch(url)
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /^text\/html/)
  assert.match(await res.text(), /<tbody id="rows">/)
})

test('/admin/events streams a snapshot with the timeline first and one per second after', async (t) => {
  const { url } = await start(t, { accounts: accounts('sse', 3) })
  const controller = new AbortController()
  t.after(() => controller.abort())
  const res = await fetch(`${url}/admin/events`, { signal: controller.signal })
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/)
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
  const events: any[] = []
  let buffer = ''
  while (events.length < 2) {
    const { value, done } = await reader.read()
    if (done) break
    buffer += value
    for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
      const frame = buffer.slice(0, i)
      buffer = buffer.slice(i + 2)
      const data = frame.split('\n').find((l) => l.startsWith('data: '))
      if (data) events.push(JSON.parse(data.slice(6)))
    }
  }
  assert.ok(Array.isArray(events[0].history))
  assert.equal(events[0].accounts.length, 3)
  assert.equal(typeof events[1].point.ok, 'number')
  assert.ok(events[1].t > events[0].t)
  controller.abort()
})

test('/admin/events carries a request-id, and HEAD on it is a clean 405 allowing GET with nothing on stderr', async (t) => {
  const { url } = await start(t, { accounts: accounts('ssehead', 1) })
  const printed: unknown[] = []
  const { error, info } = console
  console.error = (...args: unknown[]) => { printed.push(args) }
  console.info = (...args: unknown[]) => { printed.push(args) }
  t.after(() => { console.error = error; console.info = info })
  const head = await fetch(`${url}/admin/events`, { method: 'HEAD' })
  assert.equal(head.status, 405)
  assert.equal(head.headers.get('allow'), 'GET')
  assert.match(head.headers.get('request-id') ?? '', /^req_/)
  const controller = new AbortController()
  t.after(() => controller.abort())
  const res = await fetch(`${url}/admin/events`, { signal: controller.signal })
  assert.equal(res.status, 200)
  assert.match(res.headers.get('request-id') ?? '', /^req_/, 'the event stream names its request id too')
  controller.abort()
  await new Promise((r) => setTimeout(r, 100))
  assert.deepEqual(printed, [], 'nothing printed outside the log')
})

test('a client that went away is counted as cancelled, not as a failure of its account', async (t) => {
  const { url } = await start(t, { accounts: accounts('gone', 1, { latencyMs: 3_000 }) })
  for (const stream of [false, true]) {
    const controller = new AbortController()
    const pending = fetch(`${url}/v1/messages`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...hello, stream }), signal: controller.signal,
    }).then((res) => res.text())
    await eventually(async () => (await getJson(`${url}/admin/accounts`)).json.inFlight === 1, 'the request is in flight')
    controller.abort()
    await pending.catch(() => {})
    // seen as gone before the next one, else the next "in flight" may still be this one and the next client leave
    // before it was ever a request (seen once the account started parked and this request woke it)
    await eventually(async () => (await getJson(`${url}/admin/accounts`)).json.inFlight === 0, 'the cancelled request freed its slot')
  }
  await eventually(async () => (await getJson(`${url}/admin/accounts`)).json.accounts[0].cancelled === 2, 'both counted as cancelled')
  const [account] = (await getJson(`${url}/admin/accounts`)).json.accounts
  assert.equal(account.failed, 0)
  assert.equal(account.completed, 0)
})

test('with lazy workers, parked accounts are marked in /admin/accounts, /metrics and agyc status', async (t) => {
  const { url, client } = await start(t, {
    dispatcher: { strategy: 'round-robin', lazyWorkers: { enabled: true } },
    accounts: accounts('park', 3),
  })
  const { response } = await client.messages.create(hello).withResponse()
  const awake = response.headers.get('x-agyc-account')
  assert.equal(awake, 'park1')

  const { json } = await getJson(`${url}/admin/accounts`)
  assert.deepEqual(json.accounts.map((a: { id: string; state: string; parked: boolean }) => [a.id, a.state, a.parked]),
    [['park1', 'up', false], ['park2', 'up', true], ['park3', 'up', true]])
  const age = (id: string) => json.accounts.find((a: { id: string }) => a.id === id).health.heartbeatAgeMs
  assert.equal(age('park2'), null, 'no worker, no heartbeat age')
  assert.equal(typeof age('park1'), 'number')

  const text = await (await fetch(`${url}/metrics`)).text()
  assert.equal(sample(text, 'agyc_account_parked{account="park1"}'), 0)
  assert.equal(sample(text, 'agyc_account_parked{account="park2"}'), 1)
  assert.equal(sample(text, 'agyc_account_heartbeat_age_seconds{account="park2"}'), undefined)
  assert.equal(typeof sample(text, 'agyc_account_heartbeat_age_seconds{account="park1"}'), 'number')

  const status = await runAgyc(['status', '--url', url])
  assert.equal(status.code, 0, status.stderr)
  const lines = status.stdout.trimEnd().split('\n')
  assert.match(lines[0], /^3\/3 accounts up \(2 parked/)
  const rows = lines.slice(3).map((l) => l.split(/\s{2,}/).slice(0, 2))
  assert.deepEqual(rows, [['park1', 'up'], ['park2', 'up (parked)'], ['park3', 'up (parked)']])
})

test('reset gives an account that failed at start a fresh worker: a CLI installed after start serves once reset', async (t) => {
  const { mkdtempSync, rmSync, symlinkSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const bin = mkdtempSync(join(tmpdir(), 'agyc-reset-bin-'))
  t.after(() => rmSync(bin, { recursive: true, force: true }))
  const claude = join(bin, 'claude')
  process.env.AGYC_RESET_TEST_KEY = 'sk-reset-test-0123456789'
  const { orch, url, client } = await start(t, {
    accounts: [{
      id: 'late-cli', models: ['m-late'],
      session: { kind: 'claude-code', command: claude, prewarm: 0, apiKey: { fromEnv: 'AGYC_RESET_TEST_KEY' } },
    }],
  })
  const account = orch.dispatcher.accounts[0]
  assert.equal(account.sessionState, 'failed', 'its CLI is not installed yet')
  assert.match(String(account.lastError), /not (installed|found)|claude/)
  const refused = await fetch(`${url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...hello, model: 'm-late' }) })
  assert.equal(refused.status, 529, 'a failed account takes no work')
  assert.match(((await refused.json()) as { error: { message: string } }).error.message, /late-cli: session failed/)

  // the CLI appears (a stand-in that answers like Claude Code); only a reset makes the account look again
  symlinkSync(new URL('./fixtures/claude-stand-in.mjs', import.meta.url).pathname, claude)
  const reset = await fetch(`${url}/admin/accounts/late-cli/reset`, { method: 'POST' })
  assert.equal(reset.status, 200)
  await reset.arrayBuffer()
  await eventually(() => account.state === 'up' && account.sessionUp, 'the account is up with a fresh session', 10_000)
  const answer = await client.messages.create({ ...hello, model: 'm-late' })
  assert.equal(answer.type, 'message')
  assert.match((answer.content[0] as { text: string }).text, /"argv"/, 'the stand-in CLI ran the request')
  const admin = await (await fetch(`${url}/admin/accounts`)).json() as { accounts: { id: string; state: string }[] }
  assert.equal(admin.accounts.find((a) => a.id === 'late-cli')?.state, 'up')
})
