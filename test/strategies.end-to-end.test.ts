import assert from 'node:assert/strict'
import { test } from 'node:test'
import { hello, mockAccounts, start } from './helpers/orchestrator.ts'

async function servedBy(client: Awaited<ReturnType<typeof start>>['client'], n: number, body: object = hello): Promise<string[]> {
  const accounts: string[] = []
  for (let i = 0; i < n; i++) {
    const { response } = await client.messages.create(body as typeof hello).withResponse()
    accounts.push(response.headers.get('x-agyc-account') ?? '?')
  }
  return accounts
}

const tally = (ids: string[]) => ids.reduce<Record<string, number>>((m, id) => ({ ...m, [id]: (m[id] ?? 0) + 1 }), {})

test('round-robin over 3 accounts serves 30 requests 10/10/10', async (t) => {
  const { client } = await start(t, { dispatcher: { strategy: 'round-robin' }, accounts: mockAccounts(3) })
  assert.deepEqual(tally(await servedBy(client, 30)), { acc01: 10, acc02: 10, acc03: 10 })
})

test('least-recently-used picks the account used longest ago', async (t) => {
  const { client } = await start(t, { dispatcher: { strategy: 'lru' }, accounts: mockAccounts(3) })
  const lru = { ...hello, metadata: { routing: { strategyHint: 'lru' } } }
  await servedBy(client, 3, lru) // acc01, acc02, acc03
  const rr = { ...hello, metadata: { routing: { strategyHint: 'round-robin' } } }
  assert.deepEqual(await servedBy(client, 1, rr), ['acc01']) // now acc02 is the least recently used
  assert.deepEqual(await servedBy(client, 3, lru), ['acc02', 'acc03', 'acc01'])
})

test('a strategy hint overrides the default strategy for that request', async (t) => {
  const { client } = await start(t, { dispatcher: { strategy: 'round-robin' }, accounts: mockAccounts(3) })
  await servedBy(client, 2) // round-robin: acc01, acc02
  const lru = { ...hello, metadata: { routing: { strategyHint: 'least-recently-used' } } }
  assert.deepEqual(await servedBy(client, 1, lru), ['acc03'])
  assert.deepEqual(await servedBy(client, 1, lru), ['acc01'])
})
