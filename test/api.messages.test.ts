import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { test } from 'node:test'
import Anthropic from '@anthropic-ai/sdk'
import { hello, mockAccounts, post, start } from './helpers/orchestrator.ts'

test('messages.create answers in the Anthropic shape and names its account', async (t) => {
  const { client } = await start(t, { accounts: mockAccounts(2) })
  const { data, response } = await client.messages.create(hello).withResponse()
  assert.equal(data.type, 'message')
  assert.equal(data.role, 'assistant')
  assert.equal(data.stop_reason, 'end_turn')
  assert.match((data.content[0] as { text: string }).text, /Hello from acc0[12]/)
  assert.ok(data.usage.output_tokens > 0)
  const account = response.headers.get('x-agyc-account')
  assert.ok(account)
  assert.equal((data as unknown as { metadata: { account_id: string } }).metadata.account_id, account)
  assert.match(response.headers.get('request-id') ?? '', /^req_/)
})

test('a stream arrives in the exact Anthropic event order and finalMessage() assembles it', async (t) => {
  const { client } = await start(t, { accounts: mockAccounts(1, { deltas: 5, text: 'one two three four five six' }) })
  const events: string[] = []
  const stream = client.messages.stream(hello)
  stream.on('streamEvent', (event) => events.push(event.type))
  const message = await stream.finalMessage()
  assert.equal((message.content[0] as { text: string }).text, 'one two three four five six')
  assert.equal(message.stop_reason, 'end_turn')
  assert.deepEqual(events, [
    'message_start', 'content_block_start',
    'content_block_delta', 'content_block_delta', 'content_block_delta', 'content_block_delta', 'content_block_delta',
    'content_block_stop', 'message_delta', 'message_stop',
  ])
})

test('the raw SSE carries ping keep-alives and the stream headers', async (t) => {
  const { url } = await start(t, { accounts: mockAccounts(1) })
  const res = await post(url, '/v1/messages?beta=true', JSON.stringify({ ...hello, stream: true }), {
    'anthropic-version': '2023-06-01', 'anthropic-beta': 'claude-code-20250219,interleaved-thinking-2025-05-14',
  })
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/)
  const names = [...res.text.matchAll(/^event: (\w+)$/gm)].map((m) => m[1])
  assert.equal(names[0], 'message_start')
  assert.ok(names.includes('ping'))
  assert.equal(names.at(-1), 'message_stop')
})

test('a client that aborts mid-stream leaves the account able to serve the next request', async (t) => {
  const { client, orch } = await start(t, { accounts: mockAccounts(1, { deltas: 20, deltaDelayMs: 50 }, { maxConcurrency: 1 }) })
  const stream = client.messages.stream(hello)
  let deltas = 0
  await assert.rejects(async () => {
    for await (const event of stream) {
      if (event.type === 'content_block_delta' && ++deltas === 2) stream.abort()
    }
  }, Anthropic.APIUserAbortError)
  const next = await client.messages.create(hello)
  assert.equal(next.type, 'message')
  const stats = await orch.dispatcher.accounts[0].stats()
  assert.equal(stats.cancelled, 1, 'the aborted request was cancelled inside the worker')
})

test('an invalid body is a BadRequestError whose message names the exact path', async (t) => {
  const { client } = await start(t, { accounts: mockAccounts(1) })
  await assert.rejects(
    client.messages.create({ ...hello, messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 7 as never }] }),
    (err: unknown) => err instanceof Anthropic.BadRequestError && /messages\.1\.content/.test(err.message)
      && (err.error as { error: { type: string } }).error.type === 'invalid_request_error',
  )
  await assert.rejects(
    client.messages.create({ ...hello, max_tokens: -1 }),
    (err: unknown) => err instanceof Anthropic.BadRequestError && /max_tokens/.test(err.message),
  )
})

test('a body that is not a JSON object is refused in words, not in zod\'s', async (t) => {
  const { url } = await start(t, { accounts: mockAccounts(1) })
  for (const body of ['[]', '"hello"', 'null', '42']) {
    for (const path of ['/v1/messages', '/v1/messages/count_tokens']) {
      const res = await post(url, path, body)
      assert.equal(res.status, 400)
      assert.equal(res.json.error.message, 'body: expected a JSON object (the Messages request)', `${path} ${body}`)
    }
  }
})

test('a stream refused before it became a job leaves no timer behind', async (t) => {
  const { url } = await start(t, { dispatcher: { strictModels: true, streamHoldMs: 10, pingIntervalMs: 20 }, accounts: mockAccounts(1, {}, { models: ['m1'] }) })
  const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  const before = timers()
  for (let i = 0; i < 10; i++) {
    const res = await post(url, '/v1/messages', JSON.stringify({ ...hello, model: 'nobody-serves-this', stream: true }))
    assert.equal(res.status, 404)
  }
  await new Promise((r) => setTimeout(r, 100)) // past the hold: a leftover pinger would be pinging by now
  assert.ok(timers() - before < 10, `${timers() - before} more timers than before`)
})

test('malformed JSON, unknown routes and wrong methods get Anthropic-shaped errors with a request id', async (t) => {
  const { url } = await start(t, { accounts: mockAccounts(1) })
  const bad = await post(url, '/v1/messages', '{"model": ')
  assert.equal(bad.status, 400)
  assert.equal(bad.json.type, 'error')
  assert.equal(bad.json.error.type, 'invalid_request_error')
  assert.match(bad.headers.get('request-id') ?? '', /^req_/)

  const missing = await fetch(`${url}/v1/nothing`)
  assert.equal(missing.status, 404)
  assert.equal(((await missing.json()) as any).error.type, 'not_found_error')
  assert.match(missing.headers.get('request-id') ?? '', /^req_/)

  const wrong = await fetch(`${url}/v1/messages`)
  assert.equal(wrong.status, 405)
  assert.equal(wrong.headers.get('allow'), 'POST')
  assert.equal(((await wrong.json()) as any).error.type, 'invalid_request_error')

  for (const [method, path] of [['HEAD', '/'], ['GET', '/healthz'], ['GET', '/v1/models']]) {
    const res = await fetch(url + path, { method })
    assert.equal(res.status, 200, `${method} ${path}`)
    assert.match(res.headers.get('request-id') ?? '', /^req_/, `${method} ${path} carries request-id`)
  }
})

test('a request shaped like Claude Code\'s is served', async (t) => {
  const { url } = await start(t, { accounts: mockAccounts(2) })
  const tools = Array.from({ length: 12 }, (_, i) => ({
    name: `Tool${i}`, description: 'a tool', input_schema: { $schema: 'http://json-schema.org/draft-07/schema#', type: 'object', additionalProperties: false },
    ...(i === 3 ? { defer_loading: true } : {}),
  }))
  const body = {
    model: 'claude-opus-5-5', // a name no config declares
    max_tokens: 128000,
    stream: true,
    system: [
      { type: 'text', text: 'x-anthropic-billing-header: cc_version=2.1; cc_entrypoint=sdk-cli;' },
      { type: 'text', text: 'You are Claude Code.', cache_control: { type: 'ephemeral' } },
    ],
    messages: [
      { role: 'user', content: [{ type: 'text', text: '<system-reminder>ctx</system-reminder>' }, { type: 'text', text: 'Say hello', cache_control: { type: 'ephemeral' } }] },
      { role: 'system', content: 'per-turn control' },
    ],
    tools,
    thinking: { type: 'adaptive', display: 'omitted' },
    context_management: { edits: [{ type: 'clear_thinking_20251015', keep: 'all' }] },
    output_config: { effort: 'medium' },
    metadata: { user_id: JSON.stringify({ device_id: 'd', account_uuid: '', session_id: 's' }) },
  }
  const res = await post(url, '/v1/messages?beta=true', JSON.stringify(body), {
    'anthropic-version': '2023-06-01', 'x-api-key': 'dummy', 'anthropic-dangerous-direct-browser-access': 'true', 'x-app': 'cli',
  })
  assert.equal(res.status, 200, res.text)
  assert.match(res.text, /event: message_stop/)
  assert.match(res.text, /"model":"claude-opus-5-5"/)
})

test('a missing max_tokens gets the documented default (the seed\'s curl example omits it)', async (t) => {
  const { url } = await start(t, { accounts: mockAccounts(1) })
  const res = await post(url, '/v1/messages', JSON.stringify({
    model: 'claude-sonnet-4-5-thinking', messages: [{ role: 'user', content: 'Say hello' }], metadata: { routing: { strategyHint: 'lru' } },
  }))
  assert.equal(res.status, 200)
  assert.equal(res.json.metadata.account_id, 'acc01')
})

test('countTokens is answered locally and models.list lists what the config declares', async (t) => {
  const { client, orch } = await start(t, {
    accounts: [
      { id: 'a', session: { kind: 'mock' }, models: ['claude-test-1', 'claude-test-2'] },
      { id: 'b', session: { kind: 'mock' }, models: ['claude-test-2', 'claude-test-3'] },
    ],
  })
  const counted = await client.messages.countTokens({ model: 'claude-test-1', messages: [{ role: 'user', content: 'x'.repeat(400) }] })
  assert.ok(counted.input_tokens >= 100 && counted.input_tokens < 110, `estimate ${counted.input_tokens}`)
  // mock accounts start parked (lazyWorkers "auto"): the first request that reaches one starts its worker
  assert.deepEqual(orch.dispatcher.accounts.map((a) => a.parked), [true, true], 'count_tokens never reached an account')
  const ids: string[] = []
  for await (const model of client.models.list()) ids.push(model.id)
  assert.deepEqual(ids, ['claude-test-1', 'claude-test-2', 'claude-test-3'])
})

test('an unknown model is served by an account\'s default model unless models are strict', async (t) => {
  const loose = await start(t, { accounts: [{ id: 'a', session: { kind: 'mock' }, models: ['claude-test-1'] }] })
  const served = await loose.client.messages.create({ ...hello, model: 'claude-unknown' })
  assert.equal(served.model, 'claude-test-1')

  const strict = await start(t, { dispatcher: { strictModels: true }, accounts: [{ id: 'a', session: { kind: 'mock' }, models: ['claude-test-1'] }] })
  await assert.rejects(strict.client.messages.create({ ...hello, model: 'claude-unknown' }),
    (err: unknown) => err instanceof Anthropic.NotFoundError && /claude-unknown/.test(err.message))
})

test('an unknown strategy hint is refused naming the field', async (t) => {
  const { url } = await start(t, { accounts: mockAccounts(1) })
  const res = await post(url, '/v1/messages', JSON.stringify({ ...hello, metadata: { routing: { strategyHint: 'fastest' } } }))
  assert.equal(res.status, 400)
  assert.match(res.json.error.message, /metadata\.routing\.strategyHint/)
})

test('one JSON log line per request with id, account, strategy, queue wait, duration and status', async (t) => {
  const { client, logs } = await start(t, { accounts: mockAccounts(1) })
  const { response } = await client.messages.create({ ...hello, model: 'evil\n{"level":60,"msg":"forged"}' }).withResponse()
  const lines = logs.filter((l) => l.msg === 'request')
  assert.equal(lines.length, 1)
  const line = lines[0]
  assert.equal(line.reqId, response.headers.get('request-id'))
  assert.equal(line.account, 'acc01')
  assert.equal(line.strategy, 'round-robin')
  assert.equal(line.status, 200)
  assert.equal(typeof line.queueMs, 'number')
  assert.equal(typeof line.durationMs, 'number')
  assert.equal(logs.filter((l) => l.msg === 'forged').length, 0, 'a client string cannot forge a line')
})

test('every answer made before a job existed is one access line and is counted once in /metrics', async (t) => {
  const { url, logs } = await start(t, { server: { bodyLimitBytes: 1024, maxHeaderBytes: 2048 }, accounts: mockAccounts(1) })
  const errorsTotal = async (): Promise<Map<string, number>> => {
    const text = await (await fetch(`${url}/metrics`)).text()
    return new Map([...text.matchAll(/^agyc_errors_total\{code="(\w+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]))
  }
  const before = await errorsTotal()
  const answers: { requestId: string; status: number; code: string }[] = []
  const record = (res: { status: number; headers: Headers }, code: string): void => {
    answers.push({ requestId: res.headers.get('request-id') ?? '', status: res.status, code })
  }
  record(await post(url, '/v1/messages', '{"model": '), 'AGYC_MALFORMED_JSON')
  record(await post(url, '/v1/messages', '[]'), 'AGYC_INVALID_REQUEST')
  record(await post(url, '/v1/messages', JSON.stringify({ ...hello, pad: 'x'.repeat(2000) })), 'AGYC_REQUEST_TOO_LARGE')
  record(await fetch(`${url}/v1/nothing`), 'AGYC_NOT_FOUND')
  record(await fetch(`${url}/v1/messages`), 'AGYC_METHOD_NOT_ALLOWED')
  for (const a of answers) {
    const lines = logs.filter((l) => l.msg === 'request' && l.reqId === a.requestId)
    assert.equal(lines.length, 1, `one access line for ${a.code}`)
    assert.equal(lines[0].status, a.status)
    assert.equal(lines[0].code, a.code)
    assert.equal(typeof lines[0].durationMs, 'number')
  }

  // refused by node's parser (431) and by the guard (403): answered outside the app, counted all the same
  const { port } = new URL(url)
  const raw = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nx-big: ${'y'.repeat(4096)}\r\n\r\n`))
    let text = ''
    socket.on('data', (d) => { text += d })
    socket.on('close', () => resolve(text))
    socket.on('error', reject)
  })
  assert.match(raw, /^HTTP\/1\.1 431 /)
  const rawId = /request-id: (\S+)/.exec(raw)![1]
  assert.equal(logs.filter((l) => l.msg === 'request' && l.reqId === rawId && l.code === 'AGYC_HEADERS_TOO_LARGE').length, 1)
  const forbidden = await post(url, '/v1/messages', JSON.stringify(hello), { origin: 'http://evil.example' })
  assert.equal(forbidden.status, 403)

  const after = await errorsTotal()
  const delta = (code: string) => (after.get(code) ?? 0) - (before.get(code) ?? 0)
  for (const code of ['AGYC_MALFORMED_JSON', 'AGYC_INVALID_REQUEST', 'AGYC_REQUEST_TOO_LARGE', 'AGYC_NOT_FOUND',
    'AGYC_METHOD_NOT_ALLOWED', 'AGYC_HEADERS_TOO_LARGE', 'AGYC_FORBIDDEN']) {
    assert.equal(delta(code), 1, `${code} counted once`)
  }
})
