import assert from 'node:assert/strict'
import { test } from 'node:test'
import { backoffMs } from '../src/dispatch/account-handle.ts'
import { Outlier } from '../src/health/outlier.ts'
import { HealthStats, combine, scoreParts } from '../src/health/score.ts'

const options = { consecutiveFailures: 5, ejectionBaseMs: 30_000, ejectionMaxMs: 300_000, defaultCooldownMs: 5_000 }

function clocked() {
  let now = 1_000_000
  const outlier = new Outlier(options, () => now)
  return { outlier, advance: (ms: number) => { now += ms }, now: () => now }
}

test('a throttle cools the account for its retry-after, else for the default', () => {
  const { outlier, advance, now } = clocked()
  outlier.recordThrottle(2)
  assert.equal(outlier.admits(), false)
  assert.equal(outlier.state(), 'cooling')
  assert.equal(outlier.recoversAt(), now() + 2000)
  advance(1999)
  assert.equal(outlier.admits(), false)
  advance(1)
  assert.equal(outlier.admits(), true)
  outlier.recordThrottle(undefined)
  advance(4999)
  assert.equal(outlier.admits(), false)
  advance(1)
  assert.equal(outlier.state(), 'ok')
  assert.equal(outlier.consecutive, 0, 'a throttle is not a failure')
})

test('five failures in a row eject for 30 s × n, capped at 300 s; a success in between resets the count', () => {
  const { outlier, advance, now } = clocked()
  for (let i = 0; i < 4; i++) assert.equal(outlier.recordFailure(), false)
  outlier.recordSuccess()
  for (let i = 0; i < 4; i++) assert.equal(outlier.recordFailure(), false)
  assert.equal(outlier.recordFailure(), true)
  assert.equal(outlier.state(), 'ejected')
  advance(29_999)
  assert.equal(outlier.admits(), false)
  advance(1)
  assert.equal(outlier.state(), 'half-open')
  assert.equal(outlier.admits(), true, 'half-open admits one probe')
  outlier.onAssign()
  assert.equal(outlier.admits(), false, 'only one probe at a time')
  assert.equal(outlier.recordFailure(), true, 'a failed probe ejects again')
  advance(59_999)
  assert.equal(outlier.admits(), false, 'second ejection lasts 60 s')
  advance(1)
  outlier.onAssign()
  outlier.recordSuccess()
  assert.equal(outlier.state(), 'ok', 'a successful probe brings it back')
  assert.equal(outlier.admits(), true)
  // the cap: the 13th ejection would be 390 s
  for (let n = 0; n < 10; n++) {
    for (let i = 0; i < 5; i++) outlier.recordFailure()
    advance(400_000)
  }
  for (let i = 0; i < 5; i++) outlier.recordFailure()
  assert.equal(outlier.ejections, 13)
  assert.equal(outlier.recoversAt() - now(), 300_000, 'never out longer than 300 s')
})

test('an abandoned probe lets another request probe', () => {
  const { outlier, advance } = clocked()
  for (let i = 0; i < 5; i++) outlier.recordFailure()
  advance(30_000)
  outlier.onAssign()
  assert.equal(outlier.admits(), false)
  outlier.onAbandon()
  assert.equal(outlier.admits(), true)
})

test('the score combines freshness, success, relative latency, loop delay and streak', () => {
  const calm = scoreParts({ heartbeatAgeMs: 500, heartbeatMs: 1000, missedHeartbeats: 3, successEwma: 1, latencyEwmaMs: 20, fleetLatencyMs: 20, loopDelayMs: 5, consecutiveFailures: 0 })
  assert.deepEqual(calm, { freshness: 1, success: 1, latency: 1, loop: 1, streak: 1 })
  assert.equal(combine(calm), 1)
  const stale = scoreParts({ heartbeatAgeMs: 3000, heartbeatMs: 1000, missedHeartbeats: 3, successEwma: 1, latencyEwmaMs: 20, fleetLatencyMs: 20, loopDelayMs: 5, consecutiveFailures: 0 })
  assert.equal(stale.freshness, 0)
  assert.equal(combine(stale), 0, 'a silent worker scores 0')
  const slow = scoreParts({ heartbeatAgeMs: 0, heartbeatMs: 1000, missedHeartbeats: 3, successEwma: 1, latencyEwmaMs: 40, fleetLatencyMs: 20, loopDelayMs: 260, consecutiveFailures: 2 })
  assert.equal(slow.latency, 0.5)
  assert.equal(slow.loop, 0.5)
  assert.equal(slow.streak, 0.25)
  assert.ok(Math.abs(combine(slow) - (0.5 + 0.1 + 0.075 + 0.0375)) < 1e-9)
})

test('success EWMA falls with failures and recovers with successes', () => {
  const stats = new HealthStats()
  stats.recordFailure()
  stats.recordFailure()
  assert.ok(Math.abs(stats.successEwma - 0.81) < 1e-9)
  assert.equal(stats.consecutiveFailures, 2)
  stats.recordSuccess(30)
  assert.equal(stats.consecutiveFailures, 0)
  assert.equal(stats.latencyEwmaMs, 30)
  stats.recordSuccess(80)
  assert.equal(stats.latencyEwmaMs, 40)
})

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

test('failures of requests already under way while ejected do not stack ejections', () => {
  const { outlier } = clocked()
  for (let i = 0; i < 5; i++) outlier.recordFailure()
  for (let i = 0; i < 30; i++) outlier.recordFailure()
  assert.equal(outlier.ejections, 1)
})

test('a dead worker is restarted after 100 ms × 1.5ⁿ with ±20 % jitter, never later than 15 s', () => {
  assert.equal(backoffMs(0, () => 0.5), 100)
  assert.equal(backoffMs(2, () => 0.5), 225)
  assert.equal(backoffMs(0, () => 0), 80)
  assert.ok(Math.abs(backoffMs(0, () => 1) - 120) < 1e-9)
  for (const random of [() => 0, () => 0.5, () => 0.999]) assert.ok(backoffMs(30, random) <= 15_000)
  assert.equal(backoffMs(30, () => 0.999), 15_000)
})
