/**
 * Fleet-wide quotas on a real redis-server: several stores (as on several nodes) reserve concurrently and the budget
 * is never exceeded; a refused reservation says which scope and when; release and settle give back what they should.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { scopes } from '../src/cluster/keys.ts'
import { FleetQuota, type Reserved } from '../src/cluster/quota.ts'
import { UNKNOWN } from '../src/cluster/store.ts'
import { redisFor, storesFor } from './helpers/cluster.ts'
import { needs, REDIS_SERVER } from './helpers/servers.ts'

const only = needs(REDIS_SERVER)

function ok(r: Reserved | typeof UNKNOWN): Extract<Reserved, { ok: true }> {
  assert.notEqual(r, UNKNOWN, 'Redis answered')
  assert.ok(r !== UNKNOWN && r.ok, `reserved: ${JSON.stringify(r)}`)
  return r
}

test('200 concurrent reservations from 3 nodes never exceed a fleet-wide budget', only, async (t) => {
  const redis = await redisFor(t)
  const quotas = (await storesFor(t, redis.url, 3)).map((s) => new FleetQuota(s))
  // the account allows 60 a minute, the credential it shares with other accounts only 37: the tighter one wins
  const want = [
    { scope: scopes.account('a1'), rules: [{ window: '1m' as const, requests: 60 }] },
    { scope: scopes.credential('c0ffee'), rules: [{ window: '1h' as const, requests: 37 }] },
  ]
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => quotas[i % 3].reserve(want)))
  assert.ok(results.every((r) => r !== UNKNOWN), 'every reservation had an answer')
  const granted = results.filter((r) => r.ok).length
  assert.equal(granted, 37, 'exactly the credential budget was granted')
  const refused = results.find((r) => !r.ok)
  assert.ok(refused && !refused.ok)
  assert.equal(refused.scope, scopes.credential('c0ffee'))
  assert.equal(refused.window, '1h')
  assert.ok(refused.retryAfterMs > 3_600_000 - 1_000 && refused.retryAfterMs <= 3_600_000 + 60_000, `retry after ~1 h (${refused.retryAfterMs})`)
  // the account scope counted only granted reservations: all or nothing
  const usage = await quotas[1].usage(scopes.account('a1'), ['1m'])
  assert.deepEqual(usage, [{ window: '1m', requests: 37, tokens: 0 }])
})

test('a released reservation frees its slot on every node; a settled one keeps it', only, async (t) => {
  const redis = await redisFor(t)
  const [a, b] = (await storesFor(t, redis.url, 2)).map((s) => new FleetQuota(s))
  const want = [{ scope: scopes.account('a1'), rules: [{ window: '1m' as const, requests: 2 }] }]
  const first = ok(await a.reserve(want))
  const second = ok(await b.reserve(want))
  const third = await a.reserve(want)
  assert.ok(third !== UNKNOWN && !third.ok, 'the third is refused')
  await b.release(first.reservation)
  ok(await b.reserve(want))
  await a.settle(second.reservation, 10)
  const fourth = await a.reserve(want)
  assert.ok(fourth !== UNKNOWN && !fourth.ok, 'settling does not give the slot back')
})

test('a token budget admits while below its limit, counts estimates at once and real usage at settle', only, async (t) => {
  const redis = await redisFor(t)
  const [a, b] = (await storesFor(t, redis.url, 2)).map((s) => new FleetQuota(s))
  const want = [{ scope: scopes.credential('k1'), rules: [{ window: '5h' as const, tokens: 1_000 }] }]
  const first = ok(await a.reserve(want, { tokens: 600 }))
  const second = ok(await b.reserve(want, { tokens: 600 })) // 600 < 1 000: admitted, and may overshoot (as locally)
  const third = await a.reserve(want, { tokens: 1 })
  assert.ok(third !== UNKNOWN && !third.ok, '1 200 estimated ≥ 1 000: refused')
  await a.settle(first.reservation, 100)
  await b.release(second.reservation)
  assert.deepEqual(await a.usage(scopes.credential('k1'), ['5h']), [{ window: '5h', requests: 0, tokens: 100 }])
  ok(await b.reserve(want))
})

test('two rules on one window count a request once, with the tighter limit', only, async (t) => {
  const redis = await redisFor(t)
  const [a] = (await storesFor(t, redis.url, 1)).map((s) => new FleetQuota(s))
  const want = [{ scope: scopes.account('a1'), rules: [{ window: '1m' as const, requests: 5 }, { window: '1m' as const, requests: 3, tokens: 50 }] }]
  for (let i = 0; i < 3; i++) ok(await a.reserve(want))
  const fourth = await a.reserve(want)
  assert.ok(fourth !== UNKNOWN && !fourth.ok)
  assert.deepEqual(await a.usage(scopes.account('a1'), ['1m']), [{ window: '1m', requests: 3, tokens: 0 }])
})
