/**
 * The embedded default (issue 17): without `cluster` in the config nothing of the fleet runs or is even loaded: no
 * cluster metric is registered (src/cluster/metrics.ts registers them when it loads), /admin/cluster says so, and the
 * request path serves as before.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { hello, mockAccounts, start } from './helpers/orchestrator.ts'

test('without `cluster`, src/cluster is not loaded: no cluster metric, /admin/cluster is a 404, requests are served here', async (t) => {
  const { url, client } = await start(t, { accounts: mockAccounts(2) })
  const { response } = await client.messages.create(hello).withResponse()
  assert.match(response.headers.get('x-agyc-account') ?? '', /^acc0[12]$/)
  assert.equal(response.headers.get('x-agyc-node'), null, 'nothing was forwarded')
  const metrics = await (await fetch(`${url}/metrics`)).text()
  assert.match(metrics, /^agyc_in_flight /m, 'the scrape worked')
  assert.doesNotMatch(metrics, /agyc_cluster_/, 'no cluster metric: src/cluster/metrics.ts was never imported')
  const cluster = await fetch(`${url}/admin/cluster`)
  assert.equal(cluster.status, 404)
  assert.equal(((await cluster.json()) as { error: { type: string } }).error.type, 'not_found_error')
  const snap = (await (await fetch(`${url}/admin/accounts`)).json()) as Record<string, unknown>
  assert.equal('cluster' in snap, false, 'the dashboard has no cluster badge to show')
})
