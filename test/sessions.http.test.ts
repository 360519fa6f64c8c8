import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { test, type TestContext } from 'node:test'
import Anthropic from '@anthropic-ai/sdk'
import { apiError, freePort, isAlive, start, textOf } from './helpers/orchestrator.ts'
import { upstreamBody } from '../workers/sessions/http.ts'
import { WORKER_YOUNG_GENERATION_MB } from '../src/dispatch/worker-link.ts'

const UPSTREAM = new URL('./fixtures/http-upstream.mjs', import.meta.url).pathname

const ask = (content: string) => ({ model: 'claude-test-1', max_tokens: 64, messages: [{ role: 'user' as const, content }] })

/** the fixture upstream as a real process of this test; gone with the test */
async function upstream(t: TestContext): Promise<{ url: string; proc: ChildProcess; stats(): Promise<{ inFlight: number; maxInFlight: number; connections: number; requests: number }> }> {
  const proc = spawn(process.execPath, [UPSTREAM], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.after(() => { proc.kill('SIGKILL') })
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout!.setEncoding('utf8').once('data', (line: string) => resolve(/listening (\S+)/.exec(line)![1]))
    proc.once('exit', () => reject(new Error('fixture upstream exited')))
  })
  return { url, proc, stats: async () => (await fetch(`${url}/stats`)).json() as never }
}


test('http forwards streamed and whole answers, tool_use blocks included', async (t) => {
  const up = await upstream(t)
  const { client } = await start(t, { accounts: [{ id: 'h', session: { kind: 'http', baseUrl: up.url } }] })
  const whole = await client.messages.create(ask('hello [[tool]]'))
  assert.equal(textOf(whole), 'http-upstream heard: hello [[tool]]')
  assert.equal(whole.stop_reason, 'tool_use')
  assert.deepEqual(whole.content[1], { type: 'tool_use', id: 'toolu_fixture', name: 'get_weather', input: { city: 'Paris' } })
  const stream = client.messages.stream(ask('stream [[tool]] [[slow 20]]'))
  const deltas: string[] = []
  stream.on('text', (d) => deltas.push(d))
  const final = await stream.finalMessage()
  assert.ok(deltas.length > 1)
  assert.equal(textOf(final), 'http-upstream heard: stream [[tool]] [[slow 20]]')
  assert.equal(final.stop_reason, 'tool_use')
  assert.deepEqual(final.content[1], { type: 'tool_use', id: 'toolu_fixture', name: 'get_weather', input: { city: 'Paris' } })
  // never buffered whole: the first delta reaches the client while the upstream is still writing the answer
  const slow = client.messages.stream(ask('[[slow 300]]'))
  let upstreamBusy: Promise<number> | undefined
  slow.once('text', () => { upstreamBusy = up.stats().then((s) => s.inFlight) })
  await slow.finalMessage()
  assert.equal(await upstreamBusy, 1, 'the upstream was still streaming when the client had its first delta')
})

test('http sends the account key and headers from environment variables and never logs them', async (t) => {
  process.env.AGYC_TEST_UPSTREAM_KEY = 'sk-test-very-secret-1'
  process.env.AGYC_TEST_TAG = 'tag-from-env'
  t.after(() => { delete process.env.AGYC_TEST_UPSTREAM_KEY; delete process.env.AGYC_TEST_TAG })
  const up = await upstream(t)
  const { client, logs } = await start(t, {
    log: { level: 'debug' },
    accounts: [{ id: 'h', session: { kind: 'http', baseUrl: up.url, apiKey: { fromEnv: 'AGYC_TEST_UPSTREAM_KEY' }, headers: { 'x-account-tag': { fromEnv: 'AGYC_TEST_TAG' } } } }],
  })
  const seen = JSON.parse(textOf(await client.messages.create(ask('[[echo-headers]]')))) as Record<string, string>
  assert.equal(seen['x-api-key'], 'sk-test-very-secret-1', 'the account key, not the client key')
  assert.equal(seen['x-account-tag'], 'tag-from-env')
  assert.match(seen['anthropic-version'], /^\d{4}-\d{2}-\d{2}$/, 'the client\'s version header, passed on')
  assert.equal(JSON.stringify(logs).includes('sk-test-very-secret-1'), false)
})

test('http forwards the client\'s anthropic-beta and anthropic-version unchanged', async (t) => {
  const up = await upstream(t)
  const { url } = await start(t, { accounts: [{ id: 'h', session: { kind: 'http', baseUrl: up.url } }] })
  const sdk = new Anthropic({ baseURL: url, apiKey: 'k', maxRetries: 0, defaultHeaders: { 'anthropic-beta': 'claude-code-20250219,context-management-2025-06-27', 'anthropic-version': '2023-06-01' } })
  const seen = JSON.parse(textOf(await sdk.messages.create(ask('[[echo-headers]]')))) as Record<string, string>
  assert.equal(seen['anthropic-beta'], 'claude-code-20250219,context-management-2025-06-27')
  assert.equal(seen['anthropic-version'], '2023-06-01')
})

test('http: what the client sent reaches the upstream, unknown fields and open-enum values included', async (t) => {
  const up = await upstream(t)
  const { url } = await start(t, { accounts: [{ id: 'h', session: { kind: 'http', baseUrl: up.url } }] })
  const sent = {
    model: 'claude-opus-5-5',
    max_tokens: 1000,
    system: [{ type: 'text', text: 'You are Claude Code.', cache_control: { type: 'ephemeral', ttl: '1h' } }],
    messages: [
      { role: 'user', content: [{ type: 'text', text: '[[echo-body]]', cache_control: { type: 'ephemeral' } }] },
      { role: 'system', content: 'per-turn control' },
    ],
    tools: [{ name: 'Read', description: 'reads', input_schema: { type: 'object' }, defer_loading: true }],
    thinking: { type: 'adaptive', display: 'omitted' },
    context_management: { edits: [{ type: 'clear_thinking_20251015', keep: 'all' }] },
    output_config: { effort: 'medium' },
    some_future_field: { nested: [1, 'two', null] },
  }
  const res = await fetch(`${url}/v1/messages?beta=true`, { method: 'POST', body: JSON.stringify(sent), headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' } })
  assert.equal(res.status, 200)
  const answer = await res.json() as Anthropic.Message
  const seen = JSON.parse(textOf(answer)) as Record<string, unknown>
  assert.deepEqual(seen, { ...sent, stream: false }, 'every field reached the upstream as sent (stream made explicit)')
})

test('http keeps the upstream error meaning: 429 with retry-after, 529, 4xx', async (t) => {
  const up = await upstream(t)
  const { client } = await start(t, {
    health: { outlierDetection: false }, // one account, many errors: each answer must keep its own meaning
    accounts: [{ id: 'h', maxConcurrency: 8, session: { kind: 'http', baseUrl: up.url } }],
  })
  const cases: [string, number, string][] = [
    ['[[status 529]]', 529, 'overloaded_error'],
    ['[[status 400]]', 400, 'invalid_request_error'],
    ['[[status 401]]', 401, 'authentication_error'],
    ['[[status 403]]', 403, 'permission_error'],
    ['[[status 404]]', 404, 'not_found_error'],
    ['[[status 413]]', 413, 'request_too_large'],
    ['[[status 500]]', 502, 'api_error'],
    ['[[redirect]]', 502, 'api_error'],
    ['[[garbage]]', 502, 'api_error'],
  ]
  await Promise.all(cases.map(async ([prompt, status, type]) => {
    const err = await apiError(client.messages.create(ask(prompt)))
    assert.equal(err.status, status, prompt)
    assert.equal((err.error as { error: { type: string } }).error.type, type, prompt)
  }))
  const limited = await apiError(client.messages.create(ask('[[status 429]] [[retry-after 7]]')))
  assert.equal(limited.status, 429)
  assert.equal(limited.headers?.get('retry-after'), '7')
  const streamed = await apiError(client.messages.stream(ask('[[status 429]] [[retry-after 9]]')).finalMessage())
  assert.equal(streamed.status, 429, 'an error before the first byte keeps its status on a streamed request too')
})

test('http: a hung or broken upstream is answered with a clear error, never a hang', async (t) => {
  const up = await upstream(t)
  const { client } = await start(t, { accounts: [{ id: 'h', session: { kind: 'http', baseUrl: up.url, headersTimeoutMs: 400 } }] })
  const hung = await apiError(client.messages.create(ask('[[hang]]')))
  assert.equal(hung.status, 504)
  const crash = await apiError(client.messages.stream(ask('[[crash]]')).finalMessage())
  assert.equal((crash.error as { error: { type: string } }).error.type, 'api_error', 'a stream cut mid-way ends with an error event')
  const midError = await apiError(client.messages.stream(ask('[[stream-error]]')).finalMessage())
  assert.equal((midError.error as { error: { type: string } }).error.type, 'overloaded_error', "the upstream's error event keeps its type")
})

/** the account's row of GET /admin/accounts, over HTTP */
async function row(url: string, id: string): Promise<{ completed: number; failed: number; cooldownUntil: number | null; health: { consecutiveFailures: number } }> {
  const body = await (await fetch(`${url}/admin/accounts`)).json() as { accounts: ({ id: string } & Awaited<ReturnType<typeof row>>)[] }
  return body.accounts.find((a) => a.id === id)!
}

test('http: an upstream error event in a stream that has begun counts against the account, never as a success', async (t) => {
  const up = await upstream(t)
  // (an id of its own: the per-account counters of /admin/accounts live as long as this test process)
  const { client, url } = await start(t, { accounts: [{ id: 'mid-stream', session: { kind: 'http', baseUrl: up.url } }] })
  // the client sees the text so far, then one error event of the upstream's type, and a clean end of stream
  const events: string[] = []
  const stream = client.messages.stream(ask('[[stream-error api_error]]'))
  stream.on('streamEvent', (e) => events.push(e.type))
  const failed = await apiError(stream.finalMessage())
  assert.equal((failed.error as { error: { type: string } }).error.type, 'api_error')
  assert.ok(events.includes('content_block_delta'), 'the answer had begun')
  let h = await row(url, 'mid-stream')
  assert.equal(h.health.consecutiveFailures, 1, 'a failure of the account')
  assert.deepEqual([h.completed, h.failed], [0, 1])
  // an overload in the middle of a stream is a throttle: the account cools down
  await apiError(client.messages.stream(ask('[[stream-error overloaded_error]]')).finalMessage())
  h = await row(url, 'mid-stream')
  assert.ok(h.cooldownUntil !== null && h.cooldownUntil > Date.now(), 'the account is cooling down')
  assert.deepEqual([h.completed, h.failed], [0, 2])
})

test('http: an upstream that opens a stream with an error event is failed over to another account before any byte', async (t) => {
  const up = await upstream(t)
  const { client, url } = await start(t, {
    // both accounts start parked (lazyWorkers "auto"): the status line's hold covers two worker starts, one per
    // attempt, which on a loaded machine can outlast the default second
    dispatcher: { strategy: 'round-robin', streamHoldMs: 5_000 },
    accounts: [
      { id: 'busy', session: { kind: 'http', baseUrl: up.url, headers: { 'x-fixture-error-first': 'overloaded_error' } } },
      { id: 'fine', session: { kind: 'http', baseUrl: up.url } },
    ],
  })
  const { data: stream, response } = await client.messages.create({ ...ask('hello'), stream: true }).withResponse()
  let text = ''
  const types: string[] = []
  for await (const event of stream) {
    types.push(event.type)
    if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text
  }
  assert.equal(response.status, 200)
  assert.equal(response.headers.get('x-agyc-account'), 'fine')
  assert.equal(response.headers.get('x-agyc-attempts'), '2', 'the first account was tried first')
  assert.equal(text, 'http-upstream heard: hello')
  assert.equal(types.filter((t) => t === 'message_start').length, 1, 'nothing of the failed attempt reached the client')
  assert.ok((await row(url, 'busy')).cooldownUntil !== null, 'the overloaded account cools down')
})

test('http runs maxConcurrency requests at once over kept-alive connections', async (t) => {
  const up = await upstream(t)
  const { client } = await start(t, { accounts: [{ id: 'h', maxConcurrency: 4, session: { kind: 'http', baseUrl: up.url } }], dispatcher: { accountQueueSize: 8 } })
  await Promise.all(Array.from({ length: 8 }, (_, i) => client.messages.create(ask(`n${i} [[sleep 200]]`))))
  for (let i = 0; i < 8; i++) await client.messages.create(ask(`seq${i}`))
  const stats = await up.stats()
  assert.equal(stats.maxInFlight, 4, 'the limit, reached and kept')
  assert.equal(stats.requests, 16)
  assert.ok(stats.connections <= 4, `connections are reused (${stats.connections} opened for 16 requests)`)
})

test('http with start: the worker launches the local server, waits for it, and stops it', async (t) => {
  const port = await freePort()
  const { client, orch } = await start(t, {
    accounts: [{
      id: 'h', session: {
        kind: 'http', baseUrl: `http://127.0.0.1:${port}`,
        start: { command: 'node', args: [UPSTREAM, '--port', String(port)], readyUrl: `http://127.0.0.1:${port}/health`, readyTimeoutMs: 10_000 },
      },
    }],
  })
  assert.equal(textOf(await client.messages.create(ask('local'))), 'http-upstream heard: local')
  const pids = [...orch.dispatcher.accounts[0].childPids]
  assert.equal(pids.length, 1)
  await orch.close(500)
  assert.equal(isAlive(pids[0]), false)
})


test('http sends the upstream the client\'s request with the account\'s model and an explicit stream, its bytes kept when they say so', () => {
  const request = { model: 'claude-test-1', max_tokens: 64, messages: [{ role: 'user', content: 'say "stream" and {braces}' }] }
  const as = (body: string, model: string, stream: boolean) => ({ body, model, stream, request: JSON.parse(body) as never })
  const cases: [string, string, boolean, boolean][] = [
    [JSON.stringify(request), 'claude-test-1', false, false], // no stream key: bytes + ,"stream":false
    [`${JSON.stringify({ ...request, stream: true })}\n`, 'claude-test-1', true, false], // streamed: the bytes as they are
    [JSON.stringify({ ...request, stream: false }), 'claude-test-1', false, false], // "stream" present: parsed again
    [JSON.stringify({ ...request, metadata: { note: 'stream' } }), 'claude-test-1', false, false], // the word as a value
    [JSON.stringify(request), 'claude-renamed', false, true], // the account renames the model: parsed again
    [JSON.stringify({ ...request, stream: true }), 'claude-renamed', true, true],
  ]
  for (const [body, model, stream, rewrites] of cases) {
    const sent = upstreamBody(as(body, model, stream), rewrites)
    assert.deepEqual(JSON.parse(sent), { ...JSON.parse(body), model, stream }, body)
  }
  assert.equal(upstreamBody(as(JSON.stringify({ ...request, stream: true }), 'claude-test-1', true), false), JSON.stringify({ ...request, stream: true }), 'the same bytes')
  assert.equal(upstreamBody(as(JSON.stringify(request), 'claude-test-1', false), false), `${JSON.stringify(request).slice(0, -1)},"stream":false}`)
})

test('an http worker\'s young generation is bounded: V8 would grow it past 100 MB under sustained load', async (t) => {
  const up = await upstream(t)
  const { client, orch } = await start(t, { accounts: [{ id: 'h', maxConcurrency: 16, session: { kind: 'http', baseUrl: up.url } }] })
  await Promise.all(Array.from({ length: 16 }, async (_, i) => {
    for (let j = 0; j < 25; j++) await client.messages.create(ask(`n${i}.${j}`))
  }))
  const stats = await orch.dispatcher.accounts[0].stats()
  assert.equal(stats.served, 400)
  assert.equal(stats.youngGenerationLimitMb, WORKER_YOUNG_GENERATION_MB, 'the worker thread runs with the bound')
  assert.ok(stats.youngGenerationMb > 0 && stats.youngGenerationMb <= WORKER_YOUNG_GENERATION_MB + 1, `young generation ${stats.youngGenerationMb} MB`)
})
