/**
 * Client model names cannot grow the usage ledger, the metrics, usage.json or the admin view without bound
 * (src/usage/model-names.ts): an account keeps its declared names, 16 others of at most 128 characters, and one
 * `other` series for the rest, counted in `agyc_labels_folded_total`.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { UsageLedger, countersOf } from '../src/usage/ledger.ts'
import { MAX_UNDECLARED_MODELS, OTHER_MODEL } from '../src/usage/model-names.ts'
import { hello, start } from './helpers/orchestrator.ts'

const one = countersOf({ input_tokens: 3, output_tokens: 2 }, false)
const longName = (i: number): string => `m-${i}-${'x'.repeat(2048)}`

test('an account keeps 16 undeclared model names; the rest, and any over 128 characters, count under "other"', () => {
  const ledger = new UsageLedger()
  for (let i = 0; i < 20; i++) ledger.record('a', `model-${i}`, one)
  for (let i = 0; i < 1_000; i++) ledger.record('a', longName(i), one)
  const report = ledger.report('a')
  assert.equal(Object.keys(report.byModel).length, MAX_UNDECLARED_MODELS + 1, '16 names and "other"')
  assert.equal(report.byModel['model-15']?.total.requests, 1, 'the first 16 names are kept apart')
  assert.equal(report.byModel['model-16'], undefined, 'the 17th folds')
  assert.equal(report.byModel[OTHER_MODEL].total.requests, 4 + 1_000)
  assert.equal(report.total.requests, 1_020, 'folding loses no request')
  assert.equal(report.total.input, 3 * 1_020)
  assert.equal(report.folded, 1_004)
  assert.deepEqual([...ledger.folds()], [['a', 1_004]])
  ledger.record('a', 'model-3', one)
  assert.equal(ledger.report('a').byModel['model-3'].total.requests, 2, 'a kept name stays kept')
  ledger.record('b', longName(0), one)
  assert.deepEqual(Object.keys(ledger.report('b').byModel), [OTHER_MODEL], 'a 2 KB name folds even on a fresh account')
})

test('a declared model name is kept under its own name even once the bound is reached', () => {
  const ledger = new UsageLedger(Date.now, (account, model) => account === 'a' && model === 'claude-declared')
  for (let i = 0; i < 100; i++) ledger.record('a', `junk-${i}`, one)
  ledger.record('a', 'claude-declared', one)
  ledger.record('b', 'claude-declared', one) // another account declares nothing: counts against its own bound only
  assert.equal(ledger.report('a').byModel['claude-declared']?.total.requests, 1)
  assert.equal(Object.keys(ledger.report('a').byModel).length, MAX_UNDECLARED_MODELS + 2)
  assert.equal(ledger.report('b').byModel['claude-declared']?.total.requests, 1)
})

/** usage.json as a version without the bound wrote it: `n` distinct 2 KB names on one account, 1 request each. */
function oversizedUsageFile(file: string, account: string, n: number, keep: Record<string, number> = {}): void {
  const now = Date.now()
  const series = (requests: number) => {
    const c = { requests, errors: 0, input: 3 * requests, output: 2 * requests, cacheRead: 0, cacheWrite: 0 }
    return { total: c, fine: [[now - (now % 10_000), c]], coarse: [[now - (now % 300_000), c]] }
  }
  const models: Record<string, unknown> = {}
  for (let i = 0; i < n; i++) models[longName(i)] = series(1)
  for (const [name, requests] of Object.entries(keep)) models[name] = series(requests)
  writeFileSync(file, JSON.stringify({ version: 1, accounts: { [account]: models } }))
}

test('a usage file written without the bound is folded as it loads, keeping declared names and every count', () => {
  const dir = mkdtempSync(join(tmpdir(), 'agyc-cardinality-'))
  const file = join(dir, 'usage.json')
  oversizedUsageFile(file, 'a', 3_000, { 'claude-declared': 1, 'busy-model': 50 })
  const ledger = UsageLedger.load(file, () => assert.fail('not corrupt'), Date.now, (_a, m) => m === 'claude-declared')
  const report = ledger.report('a')
  assert.ok(Object.keys(report.byModel).length <= MAX_UNDECLARED_MODELS + 2, `${Object.keys(report.byModel).length} series`)
  assert.equal(report.byModel['claude-declared']?.total.requests, 1, 'declared: kept though it has the fewest requests')
  assert.equal(report.byModel['busy-model']?.total.requests, 50, 'the busiest undeclared names are the ones kept')
  assert.equal(report.total.requests, 3_000 + 51)
  assert.equal(report.windows['1h'].requests, 3_000 + 51, 'the buckets are merged too')
  assert.ok(ledger.dirty, 'the bounded ledger is saved at the next save')
  ledger.save(file)
  assert.ok(statSync(file).size < 20_000, `usage.json after the fold: ${statSync(file).size} bytes`)
})

interface AccountsView { accounts: { id: string; usage: { byModel: Record<string, { total: { requests: number } }>; folded: number } }[] }

test('5 000 distinct 2 KB model names: /metrics, /admin/accounts and usage.json stay small, also after a restart', async (t) => {
  const stateRoot = mkdtempSync(join(tmpdir(), 'agyc-cardinality-'))
  const config = { stateRoot, accounts: [{ id: 'u1', maxConcurrency: 20, session: { kind: 'mock' }, aliases: { fast: 'claude-fast-1' } }] }
  const first = await start(t, config)
  let next = 0
  const flood = async (): Promise<void> => {
    for (let i = next++; i < 5_000; i = next++) {
      const res = await fetch(`${first.url}/v1/messages`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...hello, model: longName(i), max_tokens: 8 }),
      })
      assert.equal(res.status, 200)
      await res.arrayBuffer()
    }
  }
  await Promise.all(Array.from({ length: 20 }, flood))
  // a name the account declares (an alias's target) is kept apart after the flood
  await first.client.messages.create({ ...hello, model: 'fast' })

  const metrics = await (await fetch(`${first.url}/metrics`)).text()
  assert.ok(metrics.length < 1_000_000, `/metrics is ${metrics.length} bytes`)
  assert.match(metrics, /^agyc_labels_folded_total\{account="u1",label="model"\} 5000$/m)
  assert.match(metrics, /^agyc_usage_requests_total\{account="u1",model="other"\} 5000$/m)
  assert.match(metrics, /^agyc_usage_requests_total\{account="u1",model="claude-fast-1"\} 1$/m)
  const adminText = await (await fetch(`${first.url}/admin/accounts`)).text()
  assert.ok(adminText.length < 100_000, `/admin/accounts is ${adminText.length} bytes`)
  const u1 = (JSON.parse(adminText) as AccountsView).accounts.find((a) => a.id === 'u1')!
  assert.deepEqual(Object.keys(u1.usage.byModel).sort(), ['claude-fast-1', 'other'])
  assert.equal(u1.usage.folded, 5_000)
  await first.orch.close()
  const saved = statSync(join(stateRoot, 'usage.json')).size
  assert.ok(saved < 20_000, `usage.json is ${saved} bytes`)

  // the restart case of issue 16: a file an older version wrote with every name in it
  oversizedUsageFile(join(stateRoot, 'usage.json'), 'u1', 5_000)
  const oversized = statSync(join(stateRoot, 'usage.json')).size
  const second = await start(t, config)
  const began = performance.now()
  const after = await (await fetch(`${second.url}/metrics`)).text()
  const scrapeMs = performance.now() - began
  assert.ok(after.length < 1_000_000, `/metrics after the restart is ${after.length} bytes`)
  assert.ok(scrapeMs < 1_000, `a scrape after the restart took ${scrapeMs.toFixed(0)} ms`)
  assert.match(after, /^agyc_usage_requests_total\{account="u1",model="other"\} 5000$/m)
  const admin = await (await fetch(`${second.url}/admin/accounts`)).text()
  assert.ok(admin.length < 100_000, `/admin/accounts after the restart is ${admin.length} bytes`)
  t.diagnostic(`/metrics ${metrics.length} B, /admin/accounts ${adminText.length} B, usage.json ${saved} B; after a restart ` +
    `with a ${(oversized / 1e6).toFixed(1)} MB usage.json: /metrics ${after.length} B in ${scrapeMs.toFixed(1)} ms, /admin/accounts ${admin.length} B`)
})
