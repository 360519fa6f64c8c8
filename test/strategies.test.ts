import assert from 'node:assert/strict'
import { test } from 'node:test'
import { HealthScore } from '../src/strategies/health-score.ts'
import { LeastRecentlyUsed } from '../src/strategies/least-recently-used.ts'
import { RoundRobin } from '../src/strategies/round-robin.ts'
import { LeastBusy, PowerOfTwoChoices } from '../src/strategies/least-busy.ts'
import { WeightedRandom } from '../src/strategies/random.ts'
import type { AccountView } from '../src/strategies/types.ts'

const view = (id: string, over: Partial<AccountView> = {}): AccountView => ({
  id, available: true, assigned: 0, maxConcurrency: 4, weight: 1, lastAssignedSeq: 0, healthScore: 1, quotaLeft: 1, ...over,
})

test('round-robin goes once around and skips unavailable accounts', () => {
  const rr = new RoundRobin()
  const accounts = [view('a'), view('b', { available: false }), view('c')]
  assert.deepEqual([1, 2, 3, 4].map(() => rr.pick(accounts)?.id), ['a', 'c', 'a', 'c'])
  assert.equal(rr.pick([view('x', { available: false })]), undefined)
})

test('least-recently-used picks the account handed work longest ago, never-used first', () => {
  const lru = new LeastRecentlyUsed()
  assert.equal(lru.pick([view('a', { lastAssignedSeq: 5 }), view('b', { lastAssignedSeq: 2 }), view('c', { lastAssignedSeq: 9 })])?.id, 'b')
  assert.equal(lru.pick([view('a', { lastAssignedSeq: 5 }), view('b', { lastAssignedSeq: 0 })])?.id, 'b')
  assert.equal(lru.pick([view('a', { lastAssignedSeq: 1, available: false }), view('b', { lastAssignedSeq: 3 })])?.id, 'b')
})

test('health-score prefers the healthiest account and spreads load among equals', () => {
  const health = new HealthScore()
  assert.equal(health.pick([view('a', { healthScore: 0.4 }), view('b', { healthScore: 0.9 })])?.id, 'b')
  assert.equal(health.pick([view('a', { healthScore: 1, assigned: 3 }), view('b', { healthScore: 0.98, assigned: 1 })])?.id, 'b')
  assert.equal(health.pick([view('a', { available: false })]), undefined)
})

test('smooth weighted round-robin spreads 3:1 without bursts', () => {
  const rr = new RoundRobin()
  const accounts = [view('a', { weight: 3 }), view('b', { weight: 1 })]
  assert.deepEqual(Array.from({ length: 8 }, () => rr.pick(accounts)?.id).join(''), 'aabaaaba')
})

test('weighted random follows the weights', () => {
  let seed = 1
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647)
  const strategy = new WeightedRandom(random)
  const accounts = [view('a', { weight: 3 }), view('b', { weight: 1 }), view('c', { available: false, weight: 100 })]
  const picks = Array.from({ length: 4000 }, () => strategy.pick(accounts)?.id)
  const a = picks.filter((id) => id === 'a').length / picks.length
  assert.ok(Math.abs(a - 0.75) < 0.03, `a got ${a}`)
  assert.ok(!picks.includes('c'))
})

test('least-busy picks the lowest load relative to the limit; two choices picks the less loaded of two', () => {
  const accounts = [view('a', { assigned: 3, maxConcurrency: 4 }), view('b', { assigned: 4, maxConcurrency: 8 }), view('c', { assigned: 1, maxConcurrency: 1, available: false })]
  assert.equal(new LeastBusy().pick(accounts)?.id, 'b')
  let i = 0
  const seq = [0.1, 0.9] // draws a, then b
  const p2c = new PowerOfTwoChoices(() => seq[i++ % 2])
  assert.equal(p2c.pick([view('a', { assigned: 3 }), view('b', { assigned: 1 })])?.id, 'b')
})

test('power-of-two-choices honours weights when the loads are equal', () => {
  let seed = 7
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647)
  const p2c = new PowerOfTwoChoices(random)
  const accounts = [view('a', { weight: 3 }), view('b', { weight: 1 })]
  const picks = Array.from({ length: 4000 }, () => p2c.pick(accounts)?.id)
  const a = picks.filter((id) => id === 'a').length / picks.length
  assert.ok(Math.abs(a - 0.75) < 0.03, `a got ${a}`)
})

test('quota (MostQuotaLeft) picks the available account with the most budget left; ties go to the first', async () => {
  const { MostQuotaLeft } = await import('../src/strategies/quota.ts')
  const quota = new MostQuotaLeft()
  assert.equal(quota.pick([view('a', { quotaLeft: 0.2 }), view('b', { quotaLeft: 0.7 }), view('c', { quotaLeft: 0.5 })])?.id, 'b')
  assert.equal(quota.pick([view('a', { quotaLeft: 0.9, available: false }), view('b', { quotaLeft: 0.1 })])?.id, 'b', 'an unavailable account is skipped, however much it has left')
  assert.equal(quota.pick([view('a', { quotaLeft: 1 }), view('b', { quotaLeft: 1 })])?.id, 'a', 'accounts without a quota count as untouched (1)')
  assert.equal(quota.pick([view('a', { quotaLeft: 0 })])?.id, 'a', 'an exhausted budget still picks when it is all there is (admission refuses beforehand)')
  assert.equal(quota.pick([view('a', { available: false })]), undefined)
})
