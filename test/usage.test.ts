import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import Anthropic from '@anthropic-ai/sdk'
import { UsageLedger, countersOf } from '../src/usage/ledger.ts'
import { Quota } from '../src/usage/quota.ts'
import { hello, start } from './helpers/orchestrator.ts'

test('the ledger sums rolling windows per account and model, and forgets what left them', () => {
  let now = 1_000_000_000
  const ledger = new UsageLedger(() => now)
  ledger.record('a', 'm1', countersOf({ input_tokens: 10, output_tokens: 5, cache_read_input_tokens: 3 }, false))
  now += 30_000
  ledger.record('a', 'm2', countersOf({ input_tokens: 1, output_tokens: 1 }, false))
  ledger.record('a', 'm2', countersOf(undefined, true))
  let report = ledger.report('a')
  assert.deepEqual(report.total, { requests: 3, errors: 1, input: 11, output: 6, cacheRead: 3, cacheWrite: 0 })
  assert.equal(report.windows['1m'].requests, 3)
  assert.equal(report.byModel.m2.windows['1h'].errors, 1)
  now += 60_000
  report = ledger.report('a')
  assert.equal(report.windows['1m'].requests, 0, 'a minute later the 1 min window is empty')
  assert.equal(report.windows['1h'].requests, 3)
  now += 6 * 3_600_000
  report = ledger.report('a')
  assert.equal(report.windows['5h'].requests, 0)
  assert.equal(report.windows['24h'].requests, 3)
  assert.equal(report.total.requests, 3, 'the total never forgets')
})

test('a quota admits requests up to its budget, counting those in flight, and says when it resets', () => {
  let now = 2_000_000_000
  const ledger = new UsageLedger(() => now)
  const quota = new Quota('a', [{ window: '1h', requests: 3 }, { window: '1m', tokens: 100 }], ledger, () => now)
  assert.equal(quota.admits(2), true)
  assert.equal(quota.admits(3), false, 'three in flight fill a budget of three')
  const delta = countersOf({ input_tokens: 60, output_tokens: 50 }, false)
  ledger.record('a', 'm', delta)
  quota.onRecord()
  assert.equal(quota.admits(0), false, '110 tokens used of 100 per minute')
  assert.ok(quota.resetsAt(0) > now && quota.resetsAt(0) <= now + 70_000)
  now += 70_000
  assert.equal(quota.admits(1), true, 'the minute passed; 1 of 3 requests used, 1 in flight')
  assert.equal(quota.admits(2), false)
  assert.ok(Math.abs(quota.left(0) - 2 / 3) < 1e-9)
})

test('usage survives a restart in the state root, and /admin/accounts shows it', async (t) => {
  const stateRoot = mkdtempSync(join(tmpdir(), 'agyc-usage-'))
  const config = { stateRoot, accounts: [{ id: 'u1', session: { kind: 'mock' } }] }
  const first = await start(t, config)
  for (let i = 0; i < 5; i++) await first.client.messages.create(hello)
  await first.orch.close()
  assert.ok(existsSync(join(stateRoot, 'usage.json')))
  const second = await start(t, config)
  const status = await (await fetch(`${second.url}/admin/accounts`)).json() as { accounts: { id: string; usage: { total: { requests: number; output: number } } }[] }
  const u1 = status.accounts.find((a) => a.id === 'u1')!
  assert.equal(u1.usage.total.requests, 5)
  assert.ok(u1.usage.total.output > 0)
  await second.client.messages.create(hello)
  const after = await (await fetch(`${second.url}/admin/accounts`)).json() as { accounts: { id: string; requests5h: number; tokens5h: number; usage: { windows: Record<string, { requests: number }>; byModel: Record<string, { total: { requests: number } }> } }[] }
  const u1After = after.accounts.find((a) => a.id === 'u1')!
  assert.deepEqual(Object.fromEntries(Object.entries(u1After.usage.windows).map(([w, c]) => [w, c.requests])), { '1m': 6, '1h': 6, '5h': 6, '24h': 6 })
  assert.equal(u1After.usage.byModel['claude-test-1'].total.requests, 6)
  assert.equal(u1After.requests5h, 6, 'the live feed (dashboard) carries the 5 h window too')
  assert.ok(u1After.tokens5h > 0)
  const metrics = await (await fetch(`${second.url}/metrics`)).text()
  assert.match(metrics, /agyc_tokens_total\{account="u1",model="claude-test-1",kind="output"\} \d+/)
  assert.match(metrics, /^agyc_usage_requests_total\{account="u1",model="claude-test-1"\} 6$/m)
  assert.match(metrics, /^agyc_usage_errors_total\{account="u1",model="claude-test-1"\} 0$/m)
})

test('a corrupt usage file is set aside and reported; start-up goes on', async (t) => {
  const stateRoot = mkdtempSync(join(tmpdir(), 'agyc-usage-'))
  writeFileSync(join(stateRoot, 'usage.json'), '{"version": 1, "accounts": {"u1": {"m": {"total": "lots"')
  const { client, logs } = await start(t, { stateRoot, accounts: [{ id: 'u1', session: { kind: 'mock' } }] })
  assert.equal((await client.messages.create(hello)).type, 'message')
  assert.ok(readdirSync(stateRoot).some((f) => f.startsWith('usage.json.corrupt-')), 'set aside')
  assert.ok(logs.some((l) => l.msg === 'usage file was corrupt: set aside, starting from zero'), 'reported')
})

test('a budget is never exceeded under 100 concurrent requests; then 429 with retry-after', async (t) => {
  const { client, orch } = await start(t, {
    accounts: ['q1', 'q2'].map((id) => ({ id, maxConcurrency: 8, quota: [{ window: '1h', requests: 20 }], session: { kind: 'mock', latencyMs: 20 } })),
  })
  const results = await Promise.allSettled(Array.from({ length: 100 }, () => client.messages.create(hello)))
  const ok = results.filter((r) => r.status === 'fulfilled').length
  assert.equal(ok, 40, 'exactly the two budgets')
  for (const r of results) {
    if (r.status === 'rejected') {
      assert.ok(r.reason instanceof Anthropic.RateLimitError, String(r.reason))
      assert.match(r.reason.headers?.get('retry-after') ?? '', /^\d+$/)
    }
  }
  for (const id of ['q1', 'q2']) assert.equal(orch.dispatcher.ledger.report(id).total.requests, 20, `${id} used exactly its budget`)
  const metrics = await (await fetch(`${orch.url}/metrics`)).text()
  assert.match(metrics, /^agyc_account_quota_left\{account="q1"\} 0$/m)
})

test('the quota strategy prefers the account with the most budget left', async (t) => {
  const { client } = await start(t, {
    dispatcher: { strategy: 'quota' },
    accounts: [
      { id: 'small', quota: [{ window: '1h', requests: 4 }], session: { kind: 'mock' } },
      { id: 'large', quota: [{ window: '1h', requests: 40 }], session: { kind: 'mock' } },
    ],
  })
  const served: string[] = []
  for (let i = 0; i < 10; i++) served.push((await client.messages.create(hello).withResponse()).response.headers.get('x-agyc-account')!)
  assert.ok(served.filter((id) => id === 'large').length >= 8, `mostly the roomier account: ${served}`)
})
