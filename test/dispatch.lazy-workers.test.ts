/**
 * `dispatcher.lazyWorkers`: an account's worker starts at its first request, and with `idleMs` stops again after that
 * long without one. `"auto"`, the default, does so for accounts without a child process (mock, http without `start`)
 * and starts the others with the orchestrator. Real orchestrator, real worker threads, real children and a real
 * upstream; the official SDK as client.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { test, type TestContext } from 'node:test'
import { eventually, fixturePids, freePort, hello, isAlive, mockAccounts, post, start, textOf } from './helpers/orchestrator.ts'

const AGENT = new URL('./fixtures/stdio-agent.mjs', import.meta.url).pathname
const EXEC_AGENT = new URL('./fixtures/exec-agent.mjs', import.meta.url).pathname
const UPSTREAM = new URL('./fixtures/http-upstream.mjs', import.meta.url).pathname
const pidIn = (text: string): number => Number(/pid (\d+)/.exec(text)?.[1])

/** the fixture upstream as a process of this test, gone with it */
async function upstream(t: TestContext): Promise<string> {
  const proc = spawn(process.execPath, [UPSTREAM], { stdio: ['pipe', 'pipe', 'inherit'] }) // it exits when its stdin closes
  t.after(() => { proc.kill('SIGKILL') })
  return new Promise<string>((resolve, reject) => {
    proc.stdout.setEncoding('utf8').once('data', (line: string) => resolve(/listening (\S+)/.exec(line)![1]))
    proc.once('exit', () => reject(new Error('fixture upstream exited')))
  })
}

const stdioAccount = (id: string) => ({
  id, maxConcurrency: 2, session: { kind: 'stdio', command: 'node', args: [AGENT], idleTimeoutMs: 5_000, killGraceMs: 300, startTimeoutMs: 5_000 },
})
const execAccount = (id: string) => ({
  id, maxConcurrency: 2, session: { kind: 'exec', command: 'node', args: [EXEC_AGENT, '--output', 'events'], output: 'events', prewarm: 1, killGraceMs: 300 },
})

test('by default mock and http accounts start parked, and each serves its first request, streamed or not', async (t) => {
  const upstreamUrl = await upstream(t)
  const { client, orch } = await start(t, {
    accounts: [
      { id: 'mock', maxConcurrency: 2, models: ['claude-test-1'], session: { kind: 'mock' } },
      { id: 'http', maxConcurrency: 2, models: ['claude-test-2'], session: { kind: 'http', baseUrl: upstreamUrl } },
    ],
  })
  assert.equal(orch.config.dispatcher.lazyWorkers.enabled, 'auto', 'the default')
  const [mock, http] = orch.dispatcher.accounts
  assert.deepEqual([mock, http].map((a) => [a.state, a.parked]), [['up', true], ['up', true]], 'ready, without workers')

  const { data, response } = await client.messages.create(hello).withResponse()
  assert.equal(response.headers.get('x-agyc-account'), 'mock')
  assert.ok(textOf(data).length > 0)
  assert.deepEqual([mock.parked, http.parked], [false, true], 'only the account that served has a worker')

  const stream = client.messages.stream({ ...hello, model: 'claude-test-2' })
  let deltas = 0
  stream.on('text', () => deltas++)
  const message = await stream.finalMessage()
  assert.equal(textOf(message), 'http-upstream heard: Say hello')
  assert.ok(deltas > 0, 'streamed')
  assert.equal(http.parked, false)
})

test('by default exec, stdio and http-with-start accounts start eagerly: their children run before any request', async (t) => {
  const port = await freePort()
  const { client, orch, dir } = await start(t, {
    dispatcher: { strategy: 'round-robin' },
    accounts: [
      execAccount('exec'),
      stdioAccount('stdio'),
      {
        id: 'local', maxConcurrency: 2, session: {
          kind: 'http', baseUrl: `http://127.0.0.1:${port}`,
          start: { command: 'node', args: [UPSTREAM, '--port', String(port)], readyUrl: `http://127.0.0.1:${port}/health`, readyTimeoutMs: 10_000 },
        },
      },
    ],
  })
  const accounts = orch.dispatcher.accounts
  assert.deepEqual(accounts.map((a) => [a.id, a.state, a.parked]), [['exec', 'up', false], ['stdio', 'up', false], ['local', 'up', false]])
  // the warm exec child, the stdio CLI and the local server, each reported by its worker and alive
  await eventually(() => accounts.every((a) => a.childPids.size > 0), 'every account reports its child')
  for (const a of accounts) for (const pid of a.childPids) assert.ok(isAlive(pid), `${a.id}'s child ${pid} runs`)
  assert.ok(fixturePids(dir).filter(isAlive).length >= 2, 'the fixture CLIs recorded themselves before any request')
  const stdioPid = [...accounts[1].childPids][0]
  const answer = textOf(await client.messages.create(hello, { headers: { 'x-agyc-session': 'to-stdio' } }))
  assert.ok(answer.length > 0)
  assert.ok(accounts.every((a) => !a.parked))
  assert.ok(isAlive(stdioPid), 'the stdio CLI started with the orchestrator is the one that serves')
})

test('lazyWorkers true parks a child-process account too: no child until its first request', async (t) => {
  const { client, orch, dir } = await start(t, {
    dispatcher: { lazyWorkers: { enabled: true } },
    accounts: [execAccount('exec')],
  })
  const [account] = orch.dispatcher.accounts
  assert.deepEqual([account.state, account.parked], ['up', true])
  await new Promise((r) => setTimeout(r, 200)) // a worker would have started its warm child by now
  assert.equal(account.childPids.size, 0)
  assert.deepEqual(fixturePids(dir), [], 'no exec child was ever started')
  const message = await client.messages.create({ ...hello, messages: [{ role: 'user', content: 'first' }] })
  assert.equal(textOf(message), 'exec-agent (claude-test-1) heard: first')
  assert.equal(account.parked, false)
})

test('lazyWorkers false starts every worker with the orchestrator, mock accounts included', async (t) => {
  const { orch } = await start(t, { dispatcher: { lazyWorkers: { enabled: false } }, accounts: mockAccounts(2) })
  const accounts = orch.dispatcher.accounts
  assert.deepEqual(accounts.map((a) => [a.state, a.parked]), [['up', false], ['up', false]])
  // a live worker answers its control plane before any request
  const stats = await Promise.all(accounts.map((a) => a.stats()))
  assert.deepEqual(stats.map((s) => s.served), [0, 0])
  assert.notEqual(stats[0].threadId, stats[1].threadId)
})

test('accounts a reload adds follow the setting the process started with, per session kind', async (t) => {
  const { url, orch, configFile } = await start(t, { accounts: mockAccounts(1) })
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as { accounts: unknown[] }
  config.accounts.push({ id: 'mock2', maxConcurrency: 2, session: { kind: 'mock' } }, stdioAccount('stdio'))
  writeFileSync(configFile, JSON.stringify(config))
  const res = await post(url, '/admin/reload', '')
  assert.equal(res.status, 200)
  assert.deepEqual(res.json.added, ['mock2', 'stdio'])
  assert.deepEqual(res.json.restartRequired, [], 'lazyWorkers unchanged: "auto" by default, before and after')
  await orch.reconciler.settled()
  const byId = new Map(orch.dispatcher.accounts.map((a) => [a.id, a]))
  assert.equal(byId.get('mock2')?.parked, true)
  assert.equal(byId.get('stdio')?.parked, false)
  await eventually(() => (byId.get('stdio')?.childPids.size ?? 0) > 0, 'the added stdio account\'s CLI runs')
})

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
