/** The restart backoff of a dead account worker (src/dispatch/account-lifecycle.ts). */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { backoffMs } from '../src/dispatch/account-lifecycle.ts'

test('a dead worker is restarted after 100 ms × 1.5ⁿ with ±20 % jitter, never later than 15 s', () => {
  assert.equal(backoffMs(0, () => 0.5), 100)
  assert.equal(backoffMs(2, () => 0.5), 225)
  assert.equal(backoffMs(0, () => 0), 80)
  assert.ok(Math.abs(backoffMs(0, () => 1) - 120) < 1e-9)
  for (const random of [() => 0, () => 0.5, () => 0.999]) assert.ok(backoffMs(30, random) <= 15_000)
  assert.equal(backoffMs(30, () => 0.999), 15_000)
})
