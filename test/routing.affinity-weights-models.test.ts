import assert from 'node:assert/strict'
import { test } from 'node:test'
import Anthropic from '@anthropic-ai/sdk'
import { AffinityTable } from '../src/dispatch/affinity.ts'
import { eventually, hello, start } from './helpers/orchestrator.ts'

const accountsOf = (ids: string[], extra: Record<string, unknown> = {}) =>
  ids.map((id) => ({ id, maxConcurrency: 4, session: { kind: 'mock' }, ...extra }))

async function accountOf(promise: Promise<{ response: Response }>): Promise<string> {
  return (await promise).response.headers.get('x-agyc-account') ?? '?'
}

test('a 5-turn conversation stays on one account while healthy and moves once when it is drained', async (t) => {
  const { client, url } = await start(t, { accounts: accountsOf(['r1', 'r2', 'r3']) })
  const system = 'You are a careful assistant.'
  const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'Turn 1: plan a trip' }]
  const served: string[] = []
  for (let turn = 1; turn <= 5; turn++) {
    // other traffic in between, so that round-robin alone would move the conversation
    await client.messages.create(hello)
    const { data, response } = await client.messages.create({ ...hello, system, messages }).withResponse()
    served.push(response.headers.get('x-agyc-account')!)
    messages.push({ role: 'assistant', content: data.content }, { role: 'user', content: `Turn ${turn + 1}` })
  }
  assert.equal(new Set(served).size, 1, `one home for 5 turns: ${served}`)
  const home = served[0]
  const drained = await fetch(`${url}/admin/accounts/${home}/drain`, { method: 'POST' })
  assert.equal(drained.status, 200)
  const after: string[] = []
  for (let turn = 6; turn <= 9; turn++) {
    await client.messages.create(hello)
    const { data, response } = await client.messages.create({ ...hello, system, messages }).withResponse()
    after.push(response.headers.get('x-agyc-account')!)
    messages.push({ role: 'assistant', content: data.content }, { role: 'user', content: `Turn ${turn + 1}` })
  }
  assert.ok(!after.includes(home), 'never the drained account')
  assert.equal(new Set(after).size, 1, `it moved once and stayed: ${after}`)
})

test('a session header or metadata.user_id keys affinity from the first turn; sticky can be turned off', async (t) => {
  const { client, orch } = await start(t, { accounts: accountsOf(['s1', 's2', 's3']) })
  const bySession = await Promise.all([0, 1, 2, 3].map(async () => {
    const ids: string[] = []
    for (let i = 0; i < 3; i++) ids.push(await accountOf(client.messages.create(hello, { headers: { 'x-agyc-session': 'conv-A' } }).withResponse()))
    return ids
  }))
  assert.equal(new Set(bySession.flat()).size, 1, 'x-agyc-session pins the conversation')
  const user = { ...hello, metadata: { user_id: JSON.stringify({ session_id: 'cc-session-1' }) } }
  const byUser = new Set<string>()
  for (let i = 0; i < 4; i++) byUser.add(await accountOf(client.messages.create(user).withResponse()))
  assert.equal(byUser.size, 1, 'metadata.user_id pins the conversation (Claude Code sends its session in it)')
  const loose = { ...user, metadata: { ...user.metadata, routing: { sticky: false } } } as typeof hello
  const spread = new Set<string>()
  for (let i = 0; i < 6; i++) spread.add(await accountOf(client.messages.create(loose).withResponse()))
  assert.ok(spread.size > 1, 'sticky: false lets the strategy choose')
  assert.ok(orch.dispatcher.affinity.hits >= 12, `hits counted (${orch.dispatcher.affinity.hits})`)
  const metrics = await (await fetch(`${orch.url}/metrics`)).text()
  assert.match(metrics, /agyc_affinity_total\{result="hit"\} \d+/)
})

test('weights 3:1 give 75/25 over 400 requests', async (t) => {
  const { client } = await start(t, {
    // eager: the shares of accounts that serve; a parked account's first requests are placed while workers start
    // (a starting worker is out of the strategy's rotation), which skews the first batch by more than the tolerance
    dispatcher: { lazyWorkers: { enabled: false } },
    accounts: [
      { id: 'w3', weight: 3, maxConcurrency: 64, session: { kind: 'mock' } },
      { id: 'w1', weight: 1, maxConcurrency: 64, session: { kind: 'mock' } },
    ],
  })
  const counts: Record<string, number> = {}
  for (let batch = 0; batch < 10; batch++) {
    const ids = await Promise.all(Array.from({ length: 40 }, () => accountOf(client.messages.create(hello).withResponse())))
    for (const id of ids) counts[id] = (counts[id] ?? 0) + 1
  }
  const share = counts.w3 / 400
  assert.ok(Math.abs(share - 0.75) <= 0.02, `w3 served ${counts.w3}/400`)
})

test('aliases map a model name to what the session runs; routing only considers accounts serving the model', async (t) => {
  const { client } = await start(t, {
    dispatcher: { strictModels: true },
    accounts: [
      { id: 'sonnet', session: { kind: 'mock', text: 'ran {model}' }, models: ['claude-sonnet-4-5'], aliases: { 'claude-sonnet-4-5-thinking': 'claude-sonnet-4-5' } },
      { id: 'haiku', session: { kind: 'mock', text: 'ran {model}' }, models: ['claude-haiku-4-5'] },
    ],
  })
  for (let i = 0; i < 4; i++) {
    const { data, response } = await client.messages.create({ ...hello, model: 'claude-sonnet-4-5-thinking' }).withResponse()
    assert.equal(response.headers.get('x-agyc-account'), 'sonnet')
    assert.equal((data.content[0] as { text: string }).text, 'ran claude-sonnet-4-5')
  }
  assert.equal(await accountOf(client.messages.create({ ...hello, model: 'claude-haiku-4-5' }).withResponse()), 'haiku')
  await assert.rejects(client.messages.create({ ...hello, model: 'gpt-5' }),
    (err: unknown) => err instanceof Anthropic.NotFoundError && /gpt-5/.test(err.message))
  const ids: string[] = []
  for await (const m of client.models.list()) ids.push(m.id)
  assert.deepEqual(ids.sort(), ['claude-haiku-4-5', 'claude-sonnet-4-5', 'claude-sonnet-4-5-thinking'])
})

test('the affinity table is bounded: the least recently used key goes first, and a key lives ttlMs after its last use', () => {
  let now = 0
  const table = new AffinityTable({ maxEntries: 3, ttlMs: 1_000 }, () => now)
  for (const key of ['a', 'b', 'c']) table.served(key, `acc-${key}`, false, true)
  assert.equal(table.home('a'), 'acc-a')
  table.served('a', 'acc-a', true, true) // used again: now the most recent
  table.served('d', 'acc-d', false, true) // over the bound: b, the least recently used, goes
  assert.equal(table.size, 3)
  assert.equal(table.home('b'), undefined)
  assert.deepEqual(['a', 'c', 'd'].map((k) => table.home(k)), ['acc-a', 'acc-c', 'acc-d'])
  now = 900
  table.served('d', 'acc-d', true, true)
  now = 1_500 // a and c were last used at 0, d at 900
  assert.equal(table.home('a'), undefined)
  assert.equal(table.home('c'), undefined)
  assert.equal(table.home('d'), 'acc-d')
  assert.deepEqual([table.hits, table.misses], [2, 4], 'the hit rate\'s two counts')
})

test('dispatcher.affinity.enabled false lets the strategy place every turn; a sticky hint still pins its request', async (t) => {
  const { client } = await start(t, { dispatcher: { affinity: { enabled: false } }, accounts: accountsOf(['o1', 'o2', 'o3']) })
  const conversation = { ...hello, metadata: { user_id: 'conv-off' } }
  const loose = new Set<string>()
  for (let i = 0; i < 6; i++) loose.add(await accountOf(client.messages.create(conversation).withResponse()))
  assert.equal(loose.size, 3, 'round-robin, conversation or not')
  const hinted = { ...conversation, metadata: { user_id: 'conv-hint', routing: { strategyHint: 'sticky' } } } as typeof hello
  const pinned = new Set<string>()
  for (let i = 0; i < 4; i++) {
    await client.messages.create(hello) // other traffic in between
    pinned.add(await accountOf(client.messages.create(hinted).withResponse()))
  }
  assert.equal(pinned.size, 1, 'strategyHint sticky turns affinity on for the request')
})

test('a conversation whose home has no capacity goes elsewhere, and that account becomes its home', async (t) => {
  // one slot each and no worker queue: a busy home cannot take the next turn
  const { client, orch } = await start(t, {
    dispatcher: { accountQueueSize: 0 },
    accounts: accountsOf(['c1', 'c2'], { maxConcurrency: 1, session: { kind: 'mock', directives: true } }),
  })
  const turn = (content: string) => client.messages.create({ ...hello, messages: [{ role: 'user', content }] }, { headers: { 'x-agyc-session': 'busy-conv' } }).withResponse()
  const home = await accountOf(turn('turn 1'))
  const slow = turn('[[mock:sleep 1000]] turn 2, long') // goes home and holds its only slot
  await eventually(() => orch.dispatcher.inFlight === 1, 'the long turn runs')
  const moved = await accountOf(turn('turn 3'))
  assert.notEqual(moved, home, 'the busy home is passed over')
  assert.equal(await accountOf(slow), home)
  for (let i = 4; i <= 6; i++) assert.equal(await accountOf(turn(`turn ${i}`)), moved, 'the new home keeps the conversation')
})
