/** Outlier detection: cooldowns on throttles, ejection after consecutive failures, the probe after an ejection. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Outlier } from '../src/health/outlier.ts'

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

test('failures of requests already under way while ejected do not stack ejections', () => {
  const { outlier } = clocked()
  for (let i = 0; i < 5; i++) outlier.recordFailure()
  for (let i = 0; i < 30; i++) outlier.recordFailure()
  assert.equal(outlier.ejections, 1)
})
