/**
 * Fail-open on a real redis-server: stopped, hung or not yet started, Redis never blocks a caller for longer than one
 * command deadline; the store says `degraded`, operations answer UNKNOWN (callers fall back to local state), and
 * everything resumes when Redis is back on the same port.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'node:test'
import { Fleet } from '../src/cluster/fleet.ts'
import { scopes } from '../src/cluster/keys.ts'
import { FleetQuota } from '../src/cluster/quota.ts'
import { Store, UNKNOWN } from '../src/cluster/store.ts'
import { freshPrefix, redisFor, storesFor } from './helpers/cluster.ts'
import { needs, REDIS_SERVER } from './helpers/servers.ts'

const only = needs(REDIS_SERVER)
const TIMEOUT = 200
const want = [{ scope: scopes.account('a1'), rules: [{ window: '1h' as const, requests: 1_000_000 }] }]

test('Redis stopped under load, then restarted on the same port: no call fails or hangs, and shared limits resume', only, async (t) => {
  const redis = await redisFor(t)
  const stores = await storesFor(t, redis.url, 3, { commandTimeoutMs: TIMEOUT })
  const quotas = stores.map((s) => new FleetQuota(s))
  const degraded = stores.map((s) => once(s, 'state').then(([state]) => state))
  let stop = false
  let slowest = 0
  const outcomes = { reserved: 0, unknown: 0, afterRestart: 0 }
  let restarted = false
  // 30 callers, each reserving in a loop, as 30 requests in flight spread over 3 nodes
  const callers = Array.from({ length: 30 }, async (_, i) => {
    while (!stop) {
      const started = performance.now()
      const r = await quotas[i % 3].reserve(want) // must never throw
      slowest = Math.max(slowest, performance.now() - started)
      if (r === UNKNOWN) outcomes.unknown++
      else if (r.ok) {
        outcomes.reserved++
        if (restarted) outcomes.afterRestart++
      }
      await sleep(5)
    }
  })
  await sleep(300)
  await redis.kill('SIGKILL')
  assert.deepEqual(await Promise.all(degraded), ['degraded', 'degraded', 'degraded'], 'every store says degraded')
  await sleep(500)
  const unknownWhileDown = outcomes.unknown
  await redis.restart()
  restarted = true
  for (const s of stores) assert.equal(await s.ready(3_000), true, 'back to ok within the reconnect backoff')
  await sleep(300)
  stop = true
  await Promise.all(callers)
  assert.ok(unknownWhileDown > 30, `answers while down were UNKNOWN (${unknownWhileDown})`)
  assert.ok(outcomes.afterRestart > 30, `reservations resumed after the restart (${outcomes.afterRestart})`)
  assert.ok(slowest < TIMEOUT + 400, `no call waited past one deadline (slowest ${Math.round(slowest)} ms)`)
  const usage = await quotas[0].usage(scopes.account('a1'), ['1h'])
  assert.ok(usage !== UNKNOWN && usage[0].requests > 0, 'counting again in the restarted Redis')
})

test('a hung Redis (SIGSTOP) costs one deadline, then answers UNKNOWN at once until a probe finds it back', only, async (t) => {
  const redis = await redisFor(t)
  const [store] = await storesFor(t, redis.url, 1, { commandTimeoutMs: TIMEOUT, probeMs: 100 })
  const quota = new FleetQuota(store)
  assert.notEqual(await quota.reserve(want), UNKNOWN)
  process.kill(redis.pid, 'SIGSTOP')
  t.after(() => { try { process.kill(redis.pid, 'SIGCONT') } catch {} })
  let started = performance.now()
  assert.equal(await quota.reserve(want), UNKNOWN)
  const first = performance.now() - started
  assert.ok(first >= TIMEOUT - 20 && first < TIMEOUT + 300, `the first call waits one deadline (${Math.round(first)} ms)`)
  assert.equal(store.state, 'degraded')
  started = performance.now()
  assert.equal(await quota.reserve(want), UNKNOWN)
  assert.ok(performance.now() - started < 50, 'later calls answer at once')
  process.kill(redis.pid, 'SIGCONT')
  assert.equal(await store.ready(2_000), true, 'the probe finds Redis back')
  const r = await quota.reserve(want)
  assert.ok(r !== UNKNOWN && r.ok)
})

test('a store started while Redis is down is degraded and connects when Redis starts', only, async (t) => {
  const redis = await redisFor(t)
  await redis.kill()
  const store = new Store({ url: redis.url, keyPrefix: freshPrefix(), commandTimeoutMs: TIMEOUT })
  t.after(() => store.close())
  store.start()
  assert.equal(store.state, 'degraded')
  assert.equal(await store.ready(300), false)
  const started = performance.now()
  assert.equal(await new FleetQuota(store).reserve(want), UNKNOWN)
  assert.ok(performance.now() - started < 50, 'answered at once')
  await redis.restart()
  assert.equal(await store.ready(3_000), true)
})

test('a fleet node re-registers at once when Redis comes back empty', only, async (t) => {
  const redis = await redisFor(t)
  const fleet = new Fleet({
    redis: redis.url, nodeId: 'node-a', advertiseUrl: 'http://127.0.0.1:1', secret: 's'.repeat(32), keyPrefix: freshPrefix(),
    heartbeatMs: 60_000, nodeTtlMs: 120_000, affinityTtlMs: 1_000, toolCallTtlMs: 1_000, commandTimeoutMs: TIMEOUT, maxClockSkewMs: 30_000,
  }, { accounts: () => [{ id: 'acct-1', state: 'ok', capacity: 2, inFlight: 0 }] })
  t.after(() => fleet.close())
  assert.equal(await fleet.store.ready(3_000), true)
  await fleet.beat()
  assert.deepEqual(fleet.membership.nodes().map((n) => n.nodeId), ['node-a'])
  await redis.kill('SIGKILL')
  await redis.restart() // empty: the record is gone with the old process
  assert.equal(await fleet.store.ready(3_000), true)
  // the heartbeat period is a minute: only the beat on reconnect can have written the record this soon (it was sent
  // on the 'ready' event, before this read, on the same connection)
  const listed = await fleet.membership.list()
  assert.deepEqual(listed !== UNKNOWN && listed.map((n) => n.nodeId), ['node-a'])
})
