import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { test } from 'node:test'
import { ConfigError, loadConfigFile } from '../src/config/load.ts'
import { eventually, hello, post, start } from './helpers/orchestrator.ts'

const account = (id: string, extra: Record<string, unknown> = {}) => ({ id, maxConcurrency: 2, session: { kind: 'mock', latencyMs: 10 }, ...extra })

function rewrite(file: string, change: (config: any) => void): void {
  const config = JSON.parse(readFileSync(file, 'utf8'))
  change(config)
  writeFileSync(file, JSON.stringify(config, null, 2))
}

const ids = async (url: string): Promise<string[]> =>
  ((await (await fetch(`${url}/admin/accounts`)).json() as { accounts: unknown }).accounts as { id: string }[]).map((a) => a.id).sort()

test('reload starts new accounts, drains and stops removed ones, restarts changed ones', async (t) => {
  const { url, orch, configFile, client } = await start(t, { accounts: [account('keep'), account('change'), account('drop')] })
  rewrite(configFile, (c) => {
    c.accounts = [account('keep'), account('change', { maxConcurrency: 3 }), account('fresh')]
  })
  const res = await post(url, '/admin/reload', '')
  assert.equal(res.status, 200)
  assert.deepEqual(res.json, { added: ['fresh'], removed: ['drop'], restarted: ['change'], unchanged: ['keep'], applied: [], restartRequired: [] })
  await orch.reconciler.settled()
  assert.deepEqual(await ids(url), ['change', 'fresh', 'keep'])
  const status = (await (await fetch(`${url}/admin/accounts`)).json() as { accounts: unknown }).accounts as { id: string; state: string; limit: number }[]
  for (const a of status) assert.equal(a.state, 'up')
  assert.equal(status.find((a) => a.id === 'change')!.limit, 3)
  const served = new Set<string>()
  for (let i = 0; i < 6; i++) served.add((await client.messages.create(hello).withResponse()).response.headers.get('x-agyc-account')!)
  assert.deepEqual([...served].sort(), ['change', 'fresh', 'keep'])
})

test('reload applies the live dispatcher settings now and names every other change as needing a restart', async (t) => {
  const served = { models: [hello.model] }
  const { url, configFile, client, logs } = await start(t, { accounts: [account('s1', served), account('s2', served)] })
  assert.equal((await client.messages.create({ ...hello, model: 'anything' })).type, 'message', 'models are not strict yet')
  rewrite(configFile, (c) => {
    c.dispatcher = { strategy: 'least-busy', strictModels: true, lazyWorkers: { enabled: true }, affinity: { enabled: false, ttlMs: 60_000 } }
    c.health = { missedHeartbeats: 5 }
  })
  const res = await post(url, '/admin/reload', '')
  assert.equal(res.status, 200)
  assert.deepEqual(res.json.applied, ['dispatcher.strategy', 'dispatcher.strictModels', 'dispatcher.affinity.enabled'])
  assert.deepEqual(res.json.restartRequired, ['dispatcher.affinity.ttlMs', 'dispatcher.lazyWorkers', 'health'])
  assert.ok(logs.some((l) => l.msg === 'reload: settings applied' && String(l.applied) === String(res.json.applied)))
  assert.ok(logs.some((l) => l.level === 40 && /take effect only after a restart/.test(String(l.msg)) && String(l.restartRequired) === String(res.json.restartRequired)))

  logs.length = 0
  await client.messages.create(hello)
  assert.equal(logs.find((l) => l.reqId !== undefined && l.status === 200)?.strategy, 'least-busy', 'the new default strategy picks')
  const err = await client.messages.create({ ...hello, model: 'anything' }).catch((e: { status: number }) => e)
  assert.equal((err as { status: number }).status, 404, 'models are strict now')

  // the same file again: nothing more to apply, and the restart is still needed
  const again = await post(url, '/admin/reload', '')
  assert.deepEqual(again.json.applied, [])
  assert.deepEqual(again.json.restartRequired, ['dispatcher.affinity.ttlMs', 'dispatcher.lazyWorkers', 'health'])
})

test('an invalid config is refused with the start-up lines (400, error shape) and the running one stays', async (t) => {
  const { url, configFile, client } = await start(t, { accounts: [account('one'), account('two')] })
  rewrite(configFile, (c) => {
    c.accounts = [account('one', { maxConcurrency: 0 }), account('one'), { id: 'x' }]
  })
  let expected: readonly string[] = []
  try {
    loadConfigFile(configFile)
  } catch (err) {
    assert.ok(err instanceof ConfigError)
    expected = err.problems
  }
  assert.ok(expected.length >= 2)
  const res = await post(url, '/admin/reload', '')
  assert.equal(res.status, 400)
  assert.equal(res.json.type, 'error')
  assert.equal(res.json.error.type, 'invalid_request_error')
  assert.equal(res.json.error.message, expected.join('\n'))
  assert.deepEqual(await ids(url), ['one', 'two'])
  await client.messages.create(hello)

  writeFileSync(configFile, '{ not json')
  assert.equal((await post(url, '/admin/reload', '')).status, 400)
  assert.deepEqual(await ids(url), ['one', 'two'])
})

test('reload under load: 20 clients for ~5 s, accounts added, removed and restarted, zero failed requests', async (t) => {
  const session = { kind: 'mock', latencyMs: 20, deltas: 4, deltaDelayMs: 5 }
  const acc = (id: string, maxConcurrency = 4) => ({ id, maxConcurrency, session })
  const { url, orch, configFile, client } = await start(t, {
    log: { level: 'warn' },
    accounts: [acc('l1'), acc('l2'), acc('l3')],
  })
  // ~5 s, and in any case until both reloads have answered (a reload waits for its new accounts to start, which takes
  // seconds on a loaded machine): the accounts they take away must hold requests at that moment
  const until = Date.now() + 5_000
  let reloading = true
  let ok = 0
  const failures: string[] = []
  const worker = async (n: number): Promise<void> => {
    for (let i = 0; (reloading || Date.now() < until) && i < 2_000; i++) {
      try {
        if ((n + i) % 2 === 0) {
          const message = await client.messages.create(hello)
          assert.equal(message.stop_reason, 'end_turn')
        } else {
          const stream = client.messages.stream(hello)
          const message = await stream.finalMessage()
          assert.equal(message.stop_reason, 'end_turn')
        }
        ok++
      } catch (err) {
        failures.push(String(err))
      }
    }
  }
  const load = Promise.all(Array.from({ length: 20 }, (_, n) => worker(n)))

  // the accounts a reload takes away hold requests at that moment: the drain has work to finish
  const holding = (...names: string[]) => orch.dispatcher.accounts.filter((a) => names.includes(a.id)).reduce((n, a) => n + a.assigned, 0)
  // reload the moment they do (a loaded machine may take longer than a second to get the clients going)
  const whenHolding = async (...names: string[]): Promise<number> => {
    for (const deadline = Date.now() + 10_000; holding(...names) === 0 && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 10))
    return holding(...names)
  }
  await new Promise((r) => setTimeout(r, 1_000))
  rewrite(configFile, (c) => { c.accounts = [acc('l1'), acc('l2', 2), acc('l4')] }) // l2 changed, l3 removed, l4 new
  const held1 = await whenHolding('l2', 'l3')
  assert.equal((await post(url, '/admin/reload', '')).status, 200)
  await new Promise((r) => setTimeout(r, 1_500))
  rewrite(configFile, (c) => { c.accounts = [acc('l4'), acc('l5'), acc('l1', 3)] }) // l1 changed, l2 removed, l5 new
  const held2 = await whenHolding('l1', 'l2')
  assert.equal((await post(url, '/admin/reload', '')).status, 200)
  reloading = false
  assert.ok(held1 > 0 && held2 > 0, `in flight on leaving accounts: ${held1}, ${held2}`)
  await load
  await orch.reconciler.settled()

  assert.deepEqual(failures, [])
  assert.ok(ok > 100, `only ${ok} requests completed`)
  assert.deepEqual(await ids(url), ['l1', 'l4', 'l5'])
  t.diagnostic(`${ok} requests, 0 failed, across two reloads`)
})

const AGENT = new URL('./fixtures/stdio-agent.mjs', import.meta.url).pathname

test('a reload that changes an account still starting lets it start, serves every queued request, and settles', async (t) => {
  // a session that takes ~600 ms to become ready: the account's replacement is still starting when the next reload
  // comes. It declares no models, so the requests' candidates are every account, the leaving ones included.
  const slow = (maxConcurrency: number) => ({
    id: 'slow', maxConcurrency,
    session: { kind: 'stdio', command: 'node', args: [AGENT, '--start-delay', '600'], startTimeoutMs: 10_000, killGraceMs: 500 },
  })
  const { url, orch, configFile, client } = await start(t, { accounts: [slow(2)] })
  const current = () => orch.dispatcher.accounts.find((a) => a.id === 'slow' && !orch.reconciler.retiring(a))!
  rewrite(configFile, (c) => { c.accounts = [slow(3)] })
  assert.equal((await post(url, '/admin/reload', '')).status, 200)
  // the replacement starts once the old one stopped; its child is up but has not answered the start ping yet
  await eventually(() => current().state === 'starting' && current().childPids.size > 0, 'the replacement is starting')
  const requests = Array.from({ length: 6 }, () => client.messages.create(hello).withResponse())
  await eventually(() => orch.dispatcher.queued === 6, 'the requests wait for the starting account')
  rewrite(configFile, (c) => { c.accounts = [slow(4)] })
  const second = await post(url, '/admin/reload', '')
  assert.equal(second.status, 200)
  assert.deepEqual(second.json.restarted, ['slow'])
  for (const { data, response } of await Promise.all(requests)) {
    assert.equal(data.type, 'message')
    assert.equal(response.headers.get('x-agyc-account'), 'slow')
  }
  let settled = false
  void orch.reconciler.settled().then(() => { settled = true })
  await eventually(() => settled, 'every drain and restart begun by the reloads finishes', 10_000)
  const status = (await (await fetch(`${url}/admin/accounts`)).json() as { accounts: { id: string; state: string; limit: number }[] }).accounts
  assert.deepEqual(status.map((a) => [a.id, a.state, a.limit]), [['slow', 'up', 4]])
})

/** one slot, no worker queue: a second request for its model waits in the global queue */
const busy = (id: string, model: string) => account(id, { maxConcurrency: 1, models: [model], session: { kind: 'mock', latencyMs: 10, directives: true } })

test('queued requests for a model no account serves after a reload are answered at once: 404 when models are strict', async (t) => {
  const { url, orch, configFile, client } = await start(t, {
    dispatcher: { strictModels: true, accountQueueSize: 0, queueTimeoutMs: 60_000 },
    accounts: [busy('gone', 'gone-model'), busy('stay', 'stay-model')],
  })
  // the only account of gone-model is busy with a slow request: the next ones wait in the global queue
  const slow = client.messages.create({ ...hello, model: 'gone-model', messages: [{ role: 'user', content: '[[mock:sleep 1000]]' }] })
  await eventually(() => orch.dispatcher.inFlight === 1, 'the slow request runs')
  const waiting = Array.from({ length: 3 }, () => client.messages.create({ ...hello, model: 'gone-model' }).then(() => 200, (err: { status: number; error?: { error?: { type?: string; message?: string } } }) => err))
  await eventually(() => orch.dispatcher.queued === 3, 'three requests queued')
  rewrite(configFile, (c) => { c.accounts = [busy('stay', 'stay-model')] })
  const reloaded = await post(url, '/admin/reload', '')
  assert.deepEqual(reloaded.json.removed, ['gone'])
  const answers = await Promise.race([Promise.all(waiting), new Promise((r) => setTimeout(r, 3_000, 'still waiting'))])
  assert.notEqual(answers, 'still waiting', 'the queued requests were answered')
  for (const err of answers as { status: number; error?: { error?: { type?: string; message?: string } } }[]) {
    assert.equal(err.status, 404)
    assert.equal(err.error?.error?.type, 'not_found_error')
    assert.match(err.error?.error?.message ?? '', /gone-model/)
  }
  assert.equal(orch.dispatcher.queued, 0)
  assert.deepEqual((await client.models.list()).data.map((m) => m.id), ['stay-model'])
  assert.equal((await slow).type, 'message', 'the removed account finished what it held')
})

test('without strict models, queued requests for a model nobody declares any more go to any account', async (t) => {
  const { url, orch, configFile, client } = await start(t, {
    dispatcher: { accountQueueSize: 0, queueTimeoutMs: 60_000 },
    accounts: [busy('gone', 'gone-model'), busy('stay', 'stay-model')],
  })
  const slow = client.messages.create({ ...hello, model: 'gone-model', messages: [{ role: 'user', content: '[[mock:sleep 1000]]' }] })
  await eventually(() => orch.dispatcher.inFlight === 1, 'the slow request runs')
  const waiting = Array.from({ length: 3 }, () => client.messages.create({ ...hello, model: 'gone-model' }).withResponse())
  await eventually(() => orch.dispatcher.queued === 3, 'three requests queued')
  rewrite(configFile, (c) => { c.accounts = [busy('stay', 'stay-model')] })
  assert.equal((await post(url, '/admin/reload', '')).status, 200)
  const answers = await Promise.race([Promise.all(waiting), new Promise<'still waiting'>((r) => setTimeout(r, 3_000, 'still waiting'))])
  assert.notEqual(answers, 'still waiting', 'the queued requests were answered')
  for (const { data, response } of answers as Awaited<typeof waiting[number]>[]) {
    assert.equal(data.type, 'message')
    assert.equal(response.headers.get('x-agyc-account'), 'stay')
  }
  assert.equal((await slow).type, 'message', 'the removed account finished what it held')
})
