import assert from 'node:assert/strict'
import { request, type IncomingHttpHeaders } from 'node:http'
import { test } from 'node:test'
import { ConfigError, parseConfig } from '../src/config/load.ts'
import { runMain, writeConfig } from './helpers/process.ts'

const problems = (raw: unknown): string[] => {
  try {
    parseConfig(raw, '/tmp/agyc')
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems]
    throw err
  }
  return []
}

test('each problem is one line naming its path and what is wrong', () => {
  const lines = problems({
    server: { port: 'eighty' },
    dispatcher: { strategy: 'fastest' },
    accounts: [
      { id: 'a', session: { kind: 'mock' } }, { id: 'b', session: { kind: 'mock' } }, { id: 'c', session: { kind: 'mock' } },
      { id: 'd', maxConcurrency: 0, session: { kind: 'mock' } },
      { id: 'e', session: { kind: 'teleport' } },
    ],
  })
  assert.ok(lines.includes('accounts[3].maxConcurrency: expected a positive integer'), lines.join('\n'))
  assert.ok(lines.some((l) => l.startsWith('server.port: ')), lines.join('\n'))
  assert.ok(lines.some((l) => l.startsWith('dispatcher.strategy: unknown strategy "fastest"')), lines.join('\n'))
  assert.ok(lines.some((l) => l.startsWith('accounts[4].session')), lines.join('\n'))
})

test('duplicate account ids and shared state directories are errors', () => {
  assert.deepEqual(problems({ accounts: [{ id: 'a', session: { kind: 'mock' } }, { id: 'a', session: { kind: 'mock' } }] }),
    ['accounts[1].id: duplicate account id "a"'])
  const shared = problems({ accounts: [{ id: 'a', stateDir: 's', session: { kind: 'mock' } }, { id: 'b', stateDir: './s/', session: { kind: 'mock' } }] })
  assert.equal(shared.length, 1)
  assert.match(shared[0], /^accounts\[1\]\.stateDir: .* already the state directory of accounts\[0\]/)
})

test('duplicate ids and shared state directories are reported alongside the schema problems', () => {
  const lines = problems({
    server: { port: 'eighty' },
    accounts: [
      { id: 'a', stateDir: 's', session: { kind: 'mock' } }, { id: 'a', session: { kind: 'mock' } },
      { id: 'b', stateDir: './s/', maxConcurrency: 0, session: { kind: 'mock' } },
    ],
  })
  assert.ok(lines.some((l) => l.startsWith('server.port: ')), lines.join('\n'))
  assert.ok(lines.includes('accounts[2].maxConcurrency: expected a positive integer'), lines.join('\n'))
  assert.ok(lines.includes('accounts[1].id: duplicate account id "a"'), lines.join('\n'))
  assert.ok(lines.some((l) => /^accounts\[2\]\.stateDir: .* already the state directory of accounts\[0\]/.test(l)), lines.join('\n'))
  assert.equal(new Set(lines).size, lines.length, 'no line twice')
})

test('an inline apiKey is refused with a line that says how to name it', () => {
  const lines = problems({ accounts: [{ id: 'a', session: { kind: 'http', baseUrl: 'http://127.0.0.1:9', apiKey: 'sk-inline' } }] })
  assert.equal(lines.length, 1, lines.join('\n'))
  assert.match(lines[0], /^accounts\[0\]\.session\.apiKey: expected \{"fromEnv": "NAME"\}/)
  assert.doesNotMatch(lines[0], /sk-inline/)
})

test('defaults are filled in and state directories resolve against the config file', () => {
  const config = parseConfig({ accounts: [{ id: 'a', session: { kind: 'mock' } }] }, '/srv/agyc')
  assert.equal(config.server.host, '127.0.0.1')
  assert.equal(config.server.port, 8088)
  assert.equal(config.dispatcher.strategy, 'round-robin')
  assert.equal(config.accounts[0].maxConcurrency, 4)
  assert.equal(config.accounts[0].stateDir, '/srv/agyc/.state/a')
  assert.deepEqual(config.dispatcher.lazyWorkers, { enabled: 'auto', idleMs: 0 })
})

test('lazyWorkers.enabled takes true, false or "auto"; anything else is one line naming the path and the choices', () => {
  const withLazy = (enabled: unknown) => ({ dispatcher: { lazyWorkers: { enabled } }, accounts: [{ id: 'a', session: { kind: 'mock' } }] })
  for (const enabled of [true, false, 'auto']) {
    assert.equal(parseConfig(withLazy(enabled), '/tmp/agyc').dispatcher.lazyWorkers.enabled, enabled, 'configs written before "auto" still load')
  }
  for (const enabled of ['yes', 'true', 1, null]) {
    assert.deepEqual(problems(withLazy(enabled)), ['dispatcher.lazyWorkers.enabled: expected true, false or "auto"'], String(enabled))
  }
})

test('a bad config file exits non-zero with one line per problem', async (t) => {
  const file = writeConfig({ accounts: [{ id: 'a', maxConcurrency: -2, session: { kind: 'mock' } }, { id: 'a', session: { kind: 'mock' } }] })
  const run = runMain(t, ['--config', file])
  assert.equal(await run.exit, 2)
  assert.match(run.output(), /^accounts\[0\]\.maxConcurrency: expected a positive integer$/m)
  assert.match(run.output(), /^accounts\[1\]\.id: duplicate account id "a"$/m)
  const broken = runMain(t, ['--config', writeConfig('{ "accounts": [')])
  assert.equal(await broken.exit, 2)
  assert.match(broken.output(), /not valid JSON/)
})

test('--port and PORT override the file, so instances can share a machine', async (t) => {
  const file = writeConfig({ server: { port: 1 }, log: { level: 'info' }, accounts: [{ id: 'a', session: { kind: 'mock' } }] })
  const byFlag = runMain(t, ['--config', file, '--port', '0'])
  const byEnv = runMain(t, ['--config', file], { PORT: '0' })
  for (const run of [byFlag, byEnv]) {
    const url = await run.url
    assert.notEqual(new URL(url).port, '1')
    assert.equal((await fetch(`${url}/healthz`)).status, 200)
    run.child.kill('SIGTERM')
    assert.equal(await run.exit, 0)
  }
})

// SIGTERM and SIGINT alike: in-flight requests finish; a request on a fresh connection (no agent, no keep-alive pool)
// is accepted and answered 503 in the error shape, not refused
for (const signal of ['SIGTERM', 'SIGINT'] as const) test(`${signal} finishes in-flight requests, answers new ones 503 (new connections too) and exits 0`, async (t) => {
  const file = writeConfig({ log: { level: 'info' }, accounts: [{ id: 'a', maxConcurrency: 2, session: { kind: 'mock', latencyMs: 1500 } }] })
  const run = runMain(t, ['--config', file, '--port', '0'])
  const url = await run.url
  const body = JSON.stringify({ model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] })
  const inflight = fetch(`${url}/v1/messages`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
  await new Promise((r) => setTimeout(r, 300))
  run.child.kill(signal)
  await new Promise((r) => setTimeout(r, 200))
  const late = await new Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = request(`${url}/v1/messages`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (d: string) => { text += d }).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
  assert.equal(late.status, 503)
  assert.equal(JSON.parse(late.body).error.type, 'overloaded_error')
  assert.equal(late.headers['retry-after'], '1')
  assert.equal(late.headers.connection, 'close')
  assert.match(String(late.headers['request-id']), /^req_/)
  const res = await inflight
  assert.equal(res.status, 200)
  assert.equal(((await res.json()) as any).type, 'message')
  assert.equal(await run.exit, 0)
})

test('a second SIGTERM ends open streams with an SSE error event and ends the process at once, by SIGTERM', async (t) => {
  const file = writeConfig({
    log: { level: 'info' }, dispatcher: { streamHoldMs: 100 },
    accounts: [{ id: 'a', maxConcurrency: 4, session: { kind: 'mock', latencyMs: 20_000 } }],
  })
  const run = runMain(t, ['--config', file, '--port', '0'])
  const url = await run.url
  const ask = (stream: boolean) => fetch(`${url}/v1/messages`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', max_tokens: 5, stream, messages: [{ role: 'user', content: 'hi' }] }),
  })
  const stream = await ask(true) // its headers came after the hold: a held stream, pinging
  assert.equal(stream.status, 200)
  const streamText = stream.text()
  const plain = ask(false)
  await new Promise((r) => setTimeout(r, 300))
  run.child.kill('SIGTERM')
  await new Promise((r) => setTimeout(r, 200))
  const sent = Date.now()
  run.child.kill('SIGTERM')
  await run.exit
  const tookMs = Date.now() - sent
  assert.equal(run.child.signalCode, 'SIGTERM', 'ended by the signal itself (status 143 in a shell)')
  assert.ok(tookMs < 1_000, `exited ${tookMs} ms after the second signal`)
  const events = (await streamText).trimEnd().split('\n\n')
  assert.match(events.at(-1)!, /^event: error\ndata: /)
  assert.equal(JSON.parse(events.at(-1)!.split('\ndata: ')[1]).error.type, 'overloaded_error')
  const refused = await plain
  assert.equal(refused.status, 503)
  assert.equal(((await refused.json()) as any).error.type, 'overloaded_error')
})
