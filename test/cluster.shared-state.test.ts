/**
 * Shared state on a real redis-server, between stores as on separate nodes: cooldowns, the affinity and tool-call
 * directories and membership, each with its TTL.
 */
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'node:test'
import { Cooldowns } from '../src/cluster/cooldowns.ts'
import { Directory } from '../src/cluster/directory.ts'
import { Membership, type AccountRecord } from '../src/cluster/membership.ts'
import { UNKNOWN } from '../src/cluster/store.ts'
import { redisFor, storesFor } from './helpers/cluster.ts'
import { needs, REDIS_SERVER } from './helpers/servers.ts'

const only = needs(REDIS_SERVER)

test('a cooldown set by one node is seen by another at its next refresh, and ends with its TTL', only, async (t) => {
  const redis = await redisFor(t)
  const [a, b] = await storesFor(t, redis.url, 2)
  const onA = new Cooldowns(a, 'node-a')
  const onB = new Cooldowns(b, 'node-b')
  onA.track(['cred1'])
  onB.track(['cred1', 'cred2'])
  await onA.set('cred1', 400, 'cooldown', '429')
  assert.ok(onA.until('cred1') > Date.now(), 'the setting node knows at once')
  assert.equal(onB.until('cred1'), 0, 'the other node has not refreshed yet')
  await onB.refresh()
  const seen = onB.get('cred1')
  assert.ok(seen, 'seen after one refresh')
  assert.equal(seen.kind, 'cooldown')
  assert.equal(seen.by, 'node-a')
  assert.equal(seen.reason, '429')
  assert.ok(seen.until > Date.now() + 200 && seen.until <= Date.now() + 400, `until ≈ now + 400 ms (${seen.until - Date.now()})`)
  assert.equal(onB.until('cred2'), 0)
  await sleep(450)
  assert.equal(onB.until('cred1'), 0, 'over by the local copy')
  await onB.refresh()
  assert.equal(onB.get('cred1'), undefined, 'and gone from Redis')
})

test('a shorter cooldown does not cut short a longer ejection, and clear ends it everywhere', only, async (t) => {
  const redis = await redisFor(t)
  const [a, b] = await storesFor(t, redis.url, 2)
  const onA = new Cooldowns(a, 'node-a')
  const onB = new Cooldowns(b, 'node-b')
  onB.track(['cred1'])
  await onA.set('cred1', 60_000, 'ejected')
  await onB.set('cred1', 1_000, 'cooldown')
  await onB.refresh()
  assert.equal(onB.get('cred1')?.kind, 'ejected')
  assert.ok(onB.until('cred1') > Date.now() + 50_000)
  await onA.clear('cred1')
  await onB.refresh()
  assert.equal(onB.until('cred1'), 0)
})

test('directory entries are shared, expire with their TTL, and affinity is renewed by each read', only, async (t) => {
  const redis = await redisFor(t)
  const [a, b] = await storesFor(t, redis.url, 2)
  const affinityA = new Directory(a, { kind: 'affinity', ttlMs: 400, renewOnRead: true })
  const affinityB = new Directory(b, { kind: 'affinity', ttlMs: 400, renewOnRead: true })
  const toolsA = new Directory(a, { kind: 'toolCall', ttlMs: 400, renewOnRead: false })
  const toolsB = new Directory(b, { kind: 'toolCall', ttlMs: 400, renewOnRead: false })
  await affinityA.set('h:conv-1', { nodeId: 'node-a', accountId: 'acct-3' })
  await toolsA.set('toolu_01', { nodeId: 'node-a', accountId: 'acct-3' })
  assert.deepEqual(await affinityB.get('h:conv-1'), { nodeId: 'node-a', accountId: 'acct-3' })
  assert.deepEqual(await toolsB.get('toolu_01'), { nodeId: 'node-a', accountId: 'acct-3' })
  assert.equal(await toolsB.get('toolu_02'), undefined)
  // the conversation keeps being used; the tool call is not
  for (let i = 0; i < 3; i++) {
    await sleep(200)
    assert.ok(await affinityB.get('h:conv-1'), `renewed by a read (${i})`)
  }
  assert.equal(await toolsB.get('toolu_01'), undefined, 'the tool call expired 400 ms after it was set')
  assert.deepEqual(await affinityA.entries(), [{ id: 'h:conv-1', placement: { nodeId: 'node-a', accountId: 'acct-3' } }])
  await sleep(450)
  assert.equal(await affinityA.get('h:conv-1'), undefined, 'unused for its TTL: gone')
  await toolsA.set('toolu_03', { nodeId: 'node-b', accountId: 'x' })
  await toolsB.delete('toolu_03')
  assert.equal(await toolsA.get('toolu_03'), undefined)
})

test('membership lists the live nodes; a node that stops beating drops out after its TTL', only, async (t) => {
  const redis = await redisFor(t)
  const [a, b, c] = await storesFor(t, redis.url, 3)
  const accounts = (n: number): AccountRecord[] => [{ id: `acct-${n}`, state: 'ok', capacity: 4, inFlight: n, credential: 'cred1' }]
  const nodeA = new Membership(a, { nodeId: 'node-a', advertiseUrl: 'http://127.0.0.1:1001', nodeTtlMs: 2_000 }, () => accounts(1))
  const nodeB = new Membership(b, { nodeId: 'node-b', advertiseUrl: 'http://127.0.0.1:1002', nodeTtlMs: 2_000 }, () => accounts(3))
  // node C beats with a short TTL, then "dies" (stops beating)
  const nodeC = new Membership(c, { nodeId: 'node-c', advertiseUrl: 'http://127.0.0.1:1003', nodeTtlMs: 300 }, () => accounts(0))
  await Promise.all([nodeA.beat(), nodeB.beat(), nodeC.beat()])
  const all = await nodeA.list()
  assert.notEqual(all, UNKNOWN)
  assert.deepEqual(all !== UNKNOWN && all.map((n) => n.nodeId).sort(), ['node-a', 'node-b', 'node-c'])
  const b1 = all !== UNKNOWN ? all.find((n) => n.nodeId === 'node-b') : undefined
  assert.equal(b1?.advertiseUrl, 'http://127.0.0.1:1002')
  assert.equal(b1?.free, 1, 'capacity 4, 3 in flight')
  assert.ok(b1 && b1.expiresInMs > 1_500 && b1.expiresInMs <= 2_000)
  assert.deepEqual(nodeA.nodes().map((n) => n.nodeId).sort(), ['node-a', 'node-b', 'node-c'], 'kept for the next placement')
  for (let i = 0; i < 3; i++) {
    await sleep(200)
    await Promise.all([nodeA.beat(), nodeB.beat()])
  }
  const live = await nodeB.list()
  assert.deepEqual(live !== UNKNOWN && live.map((n) => n.nodeId).sort(), ['node-a', 'node-b'], 'node-c expired')
  await nodeB.leave()
  const left = await nodeA.list()
  assert.deepEqual(left !== UNKNOWN && left.map((n) => n.nodeId), ['node-a'], 'node-b left at once')
})
