/** The retry budget: failovers limited to a share of recent traffic. */
import assert from 'node:assert/strict'
import { test } from 'node:test'

test('the retry budget allows a share of recent traffic, at least the minimum, sliding over time', async () => {
  const { RetryBudget } = await import('../src/health/retry-budget.ts')
  let now = 0
  const budget = new RetryBudget({ percent: 20, min: 3, windowMs: 10_000 }, () => now)
  assert.deepEqual([1, 2, 3, 4].map(() => budget.tryRetry()), [true, true, true, false], 'the minimum with no traffic')
  for (let i = 0; i < 100; i++) budget.recordRequest(now)
  const allowed = Array.from({ length: 30 }, () => budget.tryRetry()).filter(Boolean).length
  assert.equal(allowed, 17, '20 % of 100 requests, 3 already spent')
  now = 25_000 // two windows later the past is forgotten
  assert.equal(budget.tryRetry(), true)
})
