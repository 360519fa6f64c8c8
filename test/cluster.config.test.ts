/** The `cluster` section: absent changes nothing; present, every field checked, the secret only named. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ConfigError, parseConfig } from '../src/config/load.ts'

const accounts = [{ id: 'a', session: { kind: 'mock' } }]
const SECRET = 'x'.repeat(40)

function problems(raw: unknown): string[] {
  try {
    parseConfig(raw, '/tmp/agyc')
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems]
    throw err
  }
  return []
}

test('without a cluster section the config has none', () => {
  assert.equal(parseConfig({ accounts }, '/tmp/agyc').cluster, undefined)
})

test('a cluster section takes its secret from the environment and fills the defaults', () => {
  process.env.AGYC_TEST_CLUSTER_SECRET = SECRET
  const { cluster } = parseConfig({
    accounts,
    cluster: { redis: 'redis://127.0.0.1:6379', nodeId: 'n1', advertiseUrl: 'http://10.0.0.5:8088/', secret: { fromEnv: 'AGYC_TEST_CLUSTER_SECRET' } },
  }, '/tmp/agyc')
  assert.ok(cluster)
  assert.equal(cluster.secret, SECRET)
  assert.equal(cluster.advertiseUrl, 'http://10.0.0.5:8088')
  assert.equal(cluster.keyPrefix, 'agyc:')
  assert.equal(cluster.heartbeatMs, 1_000)
  assert.equal(cluster.nodeTtlMs, 5_000)
})

test('a literal cluster secret, a short one, a missing variable and a bad Redis URL are one line each', () => {
  process.env.AGYC_TEST_SHORT_SECRET = 'short'
  delete process.env.AGYC_TEST_UNSET_SECRET
  const base = { redis: 'redis://127.0.0.1:6379', nodeId: 'n1', advertiseUrl: 'http://127.0.0.1:1' }
  assert.match(problems({ accounts, cluster: { ...base, secret: SECRET } }).join('\n'), /^cluster\.secret: expected \{"fromEnv": "NAME"\}/)
  assert.deepEqual(problems({ accounts, cluster: { ...base, secret: { fromEnv: 'AGYC_TEST_SHORT_SECRET' } } }),
    ['cluster.secret: expected at least 32 characters in AGYC_TEST_SHORT_SECRET'])
  assert.deepEqual(problems({ accounts, cluster: { ...base, secret: { fromEnv: 'AGYC_TEST_UNSET_SECRET' } } }),
    ['cluster.secret: environment variable AGYC_TEST_UNSET_SECRET is not set'])
  process.env.AGYC_TEST_CLUSTER_SECRET = SECRET
  const named = { fromEnv: 'AGYC_TEST_CLUSTER_SECRET' }
  assert.deepEqual(problems({ accounts, cluster: { ...base, secret: named, redis: 'http://127.0.0.1:6379' } }),
    ['cluster.redis: expected a URL like "redis://127.0.0.1:6379"'])
  assert.deepEqual(problems({ accounts, cluster: { ...base, secret: named, heartbeatMs: 2_000, nodeTtlMs: 3_000 } }),
    ['cluster.nodeTtlMs: expected at least 2 × heartbeatMs'])
})
