/**
 * Affinity keys are fixed-size hashes, never the client's string, and the table is bounded in bytes as well as in
 * entries (src/dispatch/affinity.ts): 1 MB user ids or session headers cost the table a few hundred bytes each.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { AffinityTable, ENTRY_BYTES, MAX_KEY_LENGTH, affinityKey } from '../src/dispatch/affinity.ts'
import type { MessagesRequest } from '../src/protocol/anthropic.ts'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** heap bytes still held after `work`, once garbage is collected */
function retained(work: () => void): number {
  gc(); gc()
  const before = process.memoryUsage().heapUsed
  work()
  gc(); gc()
  return process.memoryUsage().heapUsed - before
}

const MB = 1 << 20
/** a distinct flat 1 MB string, as JSON.parse makes of a request body's `metadata.user_id` */
const bigId = (i: number): string => (JSON.parse(JSON.stringify({ id: `${i}:${'u'.repeat(MB)}` })) as { id: string }).id
const turn = (userId?: string): MessagesRequest =>
  ({ model: 'm', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }], ...(userId ? { metadata: { user_id: userId } } : {}) }) as MessagesRequest

test('a key from a 1 MB user id or session header is a fixed-size hash, stable for the same id', () => {
  const id = bigId(1)
  const fromUser = affinityKey({}, turn(id))
  const fromHeader = affinityKey({ 'x-agyc-session': id }, turn())
  const fromClaude = affinityKey({ 'x-claude-code-session-id': id }, turn())
  for (const k of [fromUser, fromHeader, fromClaude]) {
    assert.ok(k.key.length <= MAX_KEY_LENGTH, `a ${k.key.length}-character key`)
    assert.equal(k.follow, true)
  }
  assert.equal(affinityKey({}, turn(bigId(1))).key, fromUser.key, 'the same id, the same key: the conversation goes home')
  assert.notEqual(affinityKey({}, turn(bigId(2))).key, fromUser.key)
  assert.notEqual(fromHeader.key, fromUser.key, 'a header and a user id never share a key')
  assert.equal(fromHeader.key, fromClaude.key, 'either session header names the same session')
  assert.equal(affinityKey({}, turn('short')).key.length, affinityKey({}, turn(id)).key.length)
})

test('100 distinct 1 MB user ids leave the table holding a few hundred bytes each, not the ids', () => {
  const table = new AffinityTable({ maxEntries: 1_000, ttlMs: 3_600_000 })
  const held = retained(() => {
    for (let i = 0; i < 100; i++) table.served(affinityKey({}, turn(bigId(i))).key, 'acc01', false, true)
  })
  assert.equal(table.size, 100)
  assert.ok(held < 100 * ENTRY_BYTES + MB, `the table holds ${(held / MB).toFixed(1)} MB for 100 keys`)
  assert.equal(table.home(affinityKey({}, turn(bigId(7))).key), 'acc01', 'each id still finds its home')
})

test('a long key from any other caller is hashed by the table itself', () => {
  const table = new AffinityTable({ maxEntries: 1_000, ttlMs: 3_600_000 })
  const held = retained(() => {
    for (let i = 0; i < 50; i++) table.served(bigId(i), 'acc01', false, true)
  })
  assert.ok(held < 50 * ENTRY_BYTES + MB, `the table holds ${(held / MB).toFixed(1)} MB for 50 raw 1 MB keys`)
  assert.equal(table.home(bigId(3)), 'acc01')
  assert.equal(table.home(bigId(99)), undefined)
})

test('the table stays within maxEntries and maxEntries × ENTRY_BYTES however many conversations pass', () => {
  const table = new AffinityTable({ maxEntries: 20_000, ttlMs: 3_600_000 })
  assert.equal(table.maxBytes, 20_000 * ENTRY_BYTES)
  const held = retained(() => {
    for (let i = 0; i < 60_000; i++) table.served(affinityKey({}, turn(`user-${i}-${'x'.repeat(200)}`)).key, 'acc01', false, true)
  })
  assert.equal(table.size, 20_000, 'the least recently used keys went')
  assert.ok(held <= table.maxBytes, `${held} bytes held, bound ${table.maxBytes}`)
  assert.equal(table.home(affinityKey({}, turn(`user-59999-${'x'.repeat(200)}`)).key), 'acc01')
  assert.equal(table.home(affinityKey({}, turn(`user-0-${'x'.repeat(200)}`)).key), undefined)
})
