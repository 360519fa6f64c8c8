import assert from 'node:assert/strict'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import Anthropic from '@anthropic-ai/sdk'
import { apiError, eventually, fixturePids, isAlive, post, start, textOf } from './helpers/orchestrator.ts'

const AGENT = new URL('./fixtures/exec-agent.mjs', import.meta.url).pathname

const ask = (content: string, extra: Record<string, unknown> = {}) => ({
  model: 'claude-test-1', max_tokens: 64, messages: [{ role: 'user' as const, content }], ...extra,
})

function execAccount(id: string, session: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  const args = (session.args as string[] | undefined) ?? []
  return {
    id, maxConcurrency: 2,
    session: { kind: 'exec', command: 'node', idleTimeoutMs: 5_000, killGraceMs: 300, ...session, args: [AGENT, ...args] },
    ...extra,
  }
}



test('exec answers in each output format, streamed and not', async (t) => {
  const { client } = await start(t, {
    accounts: [
      execAccount('text', { output: 'text', args: ['--output', 'text'] }),
      execAccount('message', { output: 'message', args: ['--output', 'message'] }),
      execAccount('events', { output: 'events', args: ['--output', 'events'] }),
    ],
    dispatcher: { strategy: 'round-robin' },
  })
  for (let i = 0; i < 3; i++) {
    const whole = await client.messages.create(ask('hello there'))
    assert.equal(textOf(whole), 'exec-agent (claude-test-1) heard: hello there')
    assert.equal(whole.stop_reason, 'end_turn')
    const stream = client.messages.stream(ask('hello stream'))
    const deltas: string[] = []
    stream.on('text', (d) => deltas.push(d))
    const final = await stream.finalMessage()
    assert.equal(textOf(final), 'exec-agent (claude-test-1) heard: hello stream')
    assert.equal(deltas.join(''), textOf(final), 'the deltas add up to the message')
  }
})

test('exec streams deltas as the child prints them', async (t) => {
  const { client } = await start(t, { accounts: [execAccount('a', { output: 'events', args: ['--output', 'events'] })] })
  const stream = client.messages.stream(ask('slowly [[slow 150]]'))
  const arrivals: number[] = []
  stream.on('text', () => arrivals.push(Date.now()))
  await stream.finalMessage()
  assert.ok(arrivals.length >= 5, `several deltas (${arrivals.length})`)
  assert.ok(arrivals.at(-1)! - arrivals[0] >= 300, 'the first delta reached the client well before the last was printed')
})

test('exec runs up to maxConcurrency children at once and queues the rest', async (t) => {
  const { client, orch } = await start(t, { accounts: [execAccount('a', { args: [] }, { maxConcurrency: 3 })], dispatcher: { accountQueueSize: 8 } })
  const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => client.messages.create(ask(`n${i} [[sleep 300]]`))))
  assert.equal(answers.length, 6)
  const stats = await orch.dispatcher.accounts[0].stats()
  assert.equal(stats.peakRunning, 3, 'exactly the limit ran at once')
  assert.equal(stats.served, 6)
})

test('a misbehaving exec child is answered with a clear error, never a hang', async (t) => {
  const { client } = await start(t, {
    health: { outlierDetection: false }, // one account, many errors: each answer must keep its own meaning
    accounts: [execAccount('a', { output: 'events', args: ['--output', 'events'], idleTimeoutMs: 2_000, maxOutputBytes: 100_000 }, { maxConcurrency: 8 })],
  })
  const cases: [string, number, string][] = [
    ['[[exit 3]]', 502, 'api_error'],
    ['[[garbage]]', 502, 'api_error'],
    ['[[partial]]', 502, 'api_error'],
    ['[[silent]]', 504, 'timeout_error'],
    ['[[huge 500000]]', 502, 'api_error'],
    ['[[error overloaded_error]]', 529, 'overloaded_error'],
    ['[[error invalid_request_error]]', 400, 'invalid_request_error'],
  ]
  await Promise.all(cases.map(async ([prompt, status, type]) => {
    const err = await apiError(client.messages.create(ask(prompt)))
    assert.equal(err.status, status, prompt)
    assert.equal((err.error as { error: { type: string } }).error.type, type, prompt)
    assert.ok((err.error as { error: { message: string } }).error.message.length > 0, 'the error says what happened')
  }))
  const limited = await apiError(client.messages.create(ask('[[error rate_limit_error]] [[retry-after 7]]')))
  assert.equal(limited.status, 429)
  assert.equal(limited.headers?.get('retry-after'), '7')
})

test('a non-zero exit carries the tail of stderr, bounded', async (t) => {
  const { url } = await start(t, { accounts: [execAccount('a')] })
  const res = await fetch(`${url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ask('[[exit 9]]')) })
  assert.equal(res.status, 502)
  const body = await res.json() as { error: { message: string } }
  assert.match(body.error.message, /code 9/)
  assert.match(body.error.message, /failing on purpose/)
  assert.ok(body.error.message.length < 2_500)
})

test('an exec child that crashes mid-stream ends the stream with an error event', async (t) => {
  const { client } = await start(t, { accounts: [execAccount('a', { output: 'events', args: ['--output', 'events'] })] })
  const stream = client.messages.stream(ask('[[crash]] [[slow 50]]'))
  let text = ''
  stream.on('text', (d) => { text += d })
  const err = await apiError(stream.finalMessage())
  assert.equal((err.error as { error: { type: string } }).error.type, 'api_error')
  assert.ok(text.length > 0, 'the first delta had reached the client')
})

test('a cancelled exec request leaves no process behind within 1 s', async (t) => {
  const { client, orch } = await start(t, { accounts: [execAccount('a', { output: 'events', args: ['--output', 'events', '--ignore-sigterm'] })] })
  const account = orch.dispatcher.accounts[0]
  const controller = new AbortController()
  const stream = client.messages.stream(ask('[[slow 300]]'), { signal: controller.signal })
  await new Promise<void>((resolve) => stream.once('text', () => resolve()))
  const pids = [...account.childPids]
  assert.equal(pids.length, 1, 'the main thread knows the running child')
  controller.abort()
  await stream.finalMessage().catch(() => {})
  const aborted = Date.now()
  await eventually(() => pids.every((pid) => !isAlive(pid)), 'the cancelled child (which ignores SIGTERM) is gone', 1_000)
  assert.ok(Date.now() - aborted < 1_000)
})

test('a timed-out exec request is answered 504 and leaves no process within 1 s', async (t) => {
  const { client, dir } = await start(t, { accounts: [execAccount('a')], dispatcher: { requestTimeoutMs: 500 } })
  const err = await apiError(client.messages.create(ask('[[silent]]')))
  assert.equal(err.status, 504)
  const answered = Date.now()
  await eventually(() => fixturePids(dir).every((pid) => !isAlive(pid)), 'no exec child survives its timeout', 1_000)
  assert.ok(Date.now() - answered < 1_000)
})

test('shell metacharacters reach an exec child byte-for-byte, as one argument and on stdin', async (t) => {
  const { client, dir } = await start(t, {
    accounts: [
      execAccount('arg', { input: 'none', args: ['--input', 'arg', '--echo', '--record', '--prompt', '{prompt}'] }),
      execAccount('stdin', { input: 'prompt', args: ['--input', 'prompt', '--echo', '--record'] }),
    ],
  })
  const marker = join(dir, 'pwned')
  const hostile = `; rm -rf / ; $(touch ${marker}) \`touch ${marker}2\` "double" 'single' | cat > ${marker}3 & \\ \n--version\n\t* ~ $HOME {model}`
  for (let i = 0; i < 2; i++) {
    const message = await client.messages.create(ask(hostile))
    assert.equal(textOf(message), hostile, 'the child saw exactly the prompt')
  }
  const arg = JSON.parse(readFileSync(join(dir, '.state', 'arg', 'last-input.json'), 'utf8')) as { argv: string[] }
  assert.deepEqual(arg.argv.slice(-2), ['--prompt', hostile], 'one argv element, placeholders inside it left alone')
  const stdin = JSON.parse(readFileSync(join(dir, '.state', 'stdin', 'last-input.json'), 'utf8')) as { stdin: string }
  assert.equal(stdin.stdin, hostile)
  for (const suffix of ['', '2', '3']) assert.equal(existsSync(marker + suffix), false, 'nothing was executed')
})

test('{requestFile} hands the child the request as a private file, one argv element, removed after the answer', async (t) => {
  const { client, dir } = await start(t, {
    accounts: [execAccount('file', { input: 'none', args: ['--input', 'arg', '--record', '--request-file', '{requestFile}'] })],
  })
  const message = await client.messages.create(ask('from a file; $(touch nothing) "quoted"'))
  assert.equal(textOf(message), 'exec-agent (claude-test-1) heard: from a file; $(touch nothing) "quoted"')
  const { argv } = JSON.parse(readFileSync(join(dir, '.state', 'file', 'last-input.json'), 'utf8')) as { argv: string[] }
  const file = argv.at(-1)!
  assert.equal(argv.at(-2), '--request-file')
  assert.equal(dirname(file), join(dir, '.state', 'file', 'tmp'), 'in the account\'s own tmp directory')
  await eventually(() => !existsSync(file), 'the request file is removed once answered')
})

test('an exec child runs in its private state directory with an allowlisted environment', async (t) => {
  process.env.AGYC_TEST_SECRET = 'from-the-environment'
  process.env.AGYC_TEST_NOT_PASSED = 'must-not-leak'
  t.after(() => { delete process.env.AGYC_TEST_SECRET; delete process.env.AGYC_TEST_NOT_PASSED })
  const { client, dir, logs } = await start(t, {
    accounts: [execAccount('a', { env: { MY_TOKEN: { fromEnv: 'AGYC_TEST_SECRET' }, CONFIG_DIR: '{stateDir}/conf' } })],
  })
  const seen = JSON.parse(textOf(await client.messages.create(ask('[[env]]')))) as { cwd: string; env: Record<string, string> }
  const stateDir = join(dir, '.state', 'a')
  assert.equal(seen.cwd, stateDir)
  assert.equal(statSync(stateDir).mode & 0o777, 0o700)
  assert.equal(seen.env.AGYC_STATE_DIR, stateDir)
  assert.equal(seen.env.HOME, stateDir)
  assert.equal(seen.env.TMPDIR, join(stateDir, 'tmp'))
  assert.equal(seen.env.MY_TOKEN, 'from-the-environment')
  assert.equal(seen.env.CONFIG_DIR, join(stateDir, 'conf'))
  assert.equal(seen.env.AGYC_TEST_NOT_PASSED, undefined, 'the orchestrator environment is not inherited')
  const allowed = new Set(['PATH', 'LANG', 'LANGUAGE', 'LC_ALL', 'LC_CTYPE', 'LC_MESSAGES', 'TZ', 'HOME', 'TMPDIR', 'AGYC_STATE_DIR', 'AGYC_ACCOUNT_ID', 'MY_TOKEN', 'CONFIG_DIR'])
  for (const name of Object.keys(seen.env)) assert.ok(allowed.has(name), `unexpected variable ${name}`)
  assert.equal(JSON.stringify(logs).includes('from-the-environment'), false, 'the secret is never logged')
})

test('prewarmed exec children wait on stdin and are replaced as they are used', async (t) => {
  const { client, dir } = await start(t, { accounts: [execAccount('a', { prewarm: 2, output: 'events', args: ['--output', 'events'] })] })
  await eventually(() => fixturePids(dir).filter(isAlive).length === 2, 'two warm children wait')
  const warm = fixturePids(dir).filter(isAlive)
  const message = await client.messages.create(ask('warm please'))
  assert.equal(textOf(message), 'exec-agent (claude-test-1) heard: warm please', 'the warm child read its request from stdin')
  await eventually(() => warm.filter(isAlive).length === 1, 'the warm child that served has exited')
  await eventually(() => fixturePids(dir).filter(isAlive).length === 2, 'a replacement is warming')
  assert.equal(fixturePids(dir).length, 3)
})

test('an image or document to a child given only the prompt text is a 400 naming the block; the whole request passes it', async (t) => {
  const { url, dir } = await start(t, {
    accounts: [
      execAccount('stdin', { input: 'prompt', args: ['--input', 'prompt', '--echo', '--record'] }, { models: ['prompt-only'] }),
      execAccount('whole', { input: 'request', args: ['--input', 'request', '--record'] }, { models: ['whole-request'] }),
    ],
  })
  const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='
  const body = (model: string) => JSON.stringify({
    model, max_tokens: 32,
    messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } }] }],
  })
  const refused = await post(url, '/v1/messages', body('prompt-only'))
  assert.equal(refused.status, 400, refused.text)
  assert.equal(refused.json.error.type, 'invalid_request_error')
  assert.match(refused.json.error.message, /messages\.0\.content\.1: a "image" block cannot be given/)
  assert.equal(fixturePids(dir).length, 0, 'no child was started for it')
  const passed = await post(url, '/v1/messages', body('whole-request'))
  assert.equal(passed.status, 200, passed.text)
  const seen = JSON.parse(readFileSync(join(dir, '.state', 'whole', 'last-input.json'), 'utf8')) as { stdin: string }
  assert.match(seen.stdin, new RegExp(png.slice(0, 40).replace(/[+/]/g, '.')), 'the child given the whole request saw the image')
})
