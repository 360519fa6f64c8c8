import assert from 'node:assert/strict'
import { test } from 'node:test'
import { HealthScore } from '../src/strategies/health-score.ts'
import { LeastRecentlyUsed } from '../src/strategies/least-recently-used.ts'
import { RoundRobin } from '../src/strategies/round-robin.ts'
import type { AccountView } from '../src/strategies/types.ts'

const view = (id: string, over: Partial<AccountView> = {}): AccountView => ({
  id, available: true, assigned: 0, maxConcurrency: 4, lastAssignedSeq: 0, healthScore: 1, ...over,
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
