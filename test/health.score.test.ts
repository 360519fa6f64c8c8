/** The health score from heartbeats, success, latency, loop delay and streak; the success and latency EWMAs. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { HealthStats, combine, scoreParts } from '../src/health/score.ts'

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
