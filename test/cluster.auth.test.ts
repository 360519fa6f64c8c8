/** Node-to-node authentication: a signed request verifies; a wrong secret, a stale or altered one is refused. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { clusterHeaders, signRequest, verifyRequest } from '../src/cluster/auth.ts'
import { credentialId } from '../src/cluster/keys.ts'

const SECRET = 'a'.repeat(40)
const request = { method: 'POST', path: '/v1/messages' }
const skew = { maxClockSkewMs: 30_000 }
const reader = (headers: Record<string, string>) => (name: string) => headers[name]

test('a request signed with the cluster secret verifies and names its node', () => {
  const headers = signRequest(SECRET, 'node-a', request)
  assert.deepEqual(verifyRequest(SECRET, request, reader(headers), skew), { ok: true, nodeId: 'node-a' })
  // through real Headers, as a fetch-based server reads them
  assert.deepEqual(verifyRequest(SECRET, request, (n) => new Headers(headers).get(n), skew), { ok: true, nodeId: 'node-a' })
})

test('a node with a wrong secret is refused', () => {
  const headers = signRequest('b'.repeat(40), 'node-x', request)
  assert.deepEqual(verifyRequest(SECRET, request, reader(headers), skew), { ok: false, reason: 'bad-signature' })
})

test('a signature does not carry over to another path, method or node', () => {
  const headers = signRequest(SECRET, 'node-a', request)
  assert.equal(verifyRequest(SECRET, { method: 'POST', path: '/admin/reload' }, reader(headers), skew).ok, false)
  assert.equal(verifyRequest(SECRET, { method: 'GET', path: '/v1/messages' }, reader(headers), skew).ok, false)
  assert.deepEqual(verifyRequest(SECRET, request, reader({ ...headers, [clusterHeaders.node]: 'node-b' }), skew), { ok: false, reason: 'bad-signature' })
  assert.deepEqual(verifyRequest(SECRET, request, reader({ ...headers, [clusterHeaders.signature]: 'x' }), skew), { ok: false, reason: 'bad-signature' })
})

test('a stale or future timestamp is refused, and missing headers say so', () => {
  const now = Date.now()
  const old = signRequest(SECRET, 'node-a', request, now - 31_000)
  assert.deepEqual(verifyRequest(SECRET, request, reader(old), { ...skew, now }), { ok: false, reason: 'stale' })
  const future = signRequest(SECRET, 'node-a', request, now + 31_000)
  assert.deepEqual(verifyRequest(SECRET, request, reader(future), { ...skew, now }), { ok: false, reason: 'stale' })
  const recent = signRequest(SECRET, 'node-a', request, now - 29_000)
  assert.equal(verifyRequest(SECRET, request, reader(recent), { ...skew, now }).ok, true)
  assert.deepEqual(verifyRequest(SECRET, request, reader({}), skew), { ok: false, reason: 'missing' })
})

test('a credential id is the same on every node with the secret, and says nothing of the key', () => {
  const key = 'sk-ant-api03-' + 'k'.repeat(40)
  const id = credentialId(key, SECRET)
  assert.match(id, /^[0-9a-f]{32}$/)
  assert.equal(credentialId(key, SECRET), id)
  assert.notEqual(credentialId(key + 'x', SECRET), id)
  assert.notEqual(credentialId(key, 'c'.repeat(40)), id, 'another fleet (secret) gets another id')
  assert.ok(!id.includes(key.slice(0, 8)))
})
