/**
 * Issue 6, point 2: client keys and the admin key. Keys come from environment variables named in the config; a
 * missing or wrong key is a 401 `authentication_error` that reaches no session, spawns no child of the exec account
 * and writes nothing.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import Anthropic from '@anthropic-ai/sdk'
import { assertError, assertNothingHappened, execAccount, footprint, hello, mockAccounts, sharedSecured, startSecured } from './helper.ts'

const CLIENT_KEY = 'agyc-client-0123456789abcdef'
const ADMIN_KEY = 'agyc-admin-fedcba9876543210'
process.env.AGYC_TEST_CLIENT_KEY = CLIENT_KEY
process.env.AGYC_TEST_ADMIN_KEY = ADMIN_KEY

const withKeys = sharedSecured({
  accounts: [execAccount()],
  server: { auth: { keys: [{ fromEnv: 'AGYC_TEST_CLIENT_KEY' }], adminKeys: [{ fromEnv: 'AGYC_TEST_ADMIN_KEY' }] } },
})

async function get(url: string, headers: Record<string, string> = {}, method = 'GET') {
  const res = await fetch(url, { method, headers })
  const text = await res.text()
  let json: unknown
  try { json = JSON.parse(text) } catch { json = undefined }
  return { status: res.status, json: json as any, headers: res.headers }
}

test('a configured key is accepted as x-api-key and as Authorization: Bearer (the SDK both ways)', async () => {
  const secured = await withKeys()
  const { url } = secured
  const before = await footprint(secured)
  const byApiKey = new Anthropic({ baseURL: url, apiKey: CLIENT_KEY, maxRetries: 0 })
  assert.equal((await byApiKey.messages.create(hello)).type, 'message')
  const byBearer = new Anthropic({ baseURL: url, apiKey: null, authToken: CLIENT_KEY, maxRetries: 0 })
  assert.equal((await byBearer.messages.create(hello)).type, 'message')
  const byAdmin = new Anthropic({ baseURL: url, apiKey: ADMIN_KEY, maxRetries: 0 })
  assert.equal((await byAdmin.messages.create(hello)).type, 'message')
  assert.equal((await footprint(secured)).children - before.children, 3, 'each request let in ran one child of the exec account')
})

test('a missing, wrong or wrong-length key is a 401 authentication_error, never a 500, and reaches no session', async () => {
  const secured = await withKeys()
  const { url } = secured
  const before = await footprint(secured)
  for (const key of ['x', CLIENT_KEY.slice(0, -1) + 'X', CLIENT_KEY + 'X', 'a'.repeat(10_000), 'Bearer ' + CLIENT_KEY]) {
    const client = new Anthropic({ baseURL: url, apiKey: key, maxRetries: 0 })
    const err = await client.messages.create(hello).then(() => undefined, (e: unknown) => e)
    assert.ok(err instanceof Anthropic.AuthenticationError, `key ${String(key).slice(0, 20)}: ${String(err)}`)
    assert.equal((err.error as any).error.type, 'authentication_error')
  }
  // no key, an empty one, a Bearer without its scheme, a Basic (not accepted on the API), a key in the query: refused
  for (const headers of [{ 'x-api-key': '' }, { authorization: 'Bearer ' }, { authorization: CLIENT_KEY }, { authorization: `Basic ${Buffer.from(`u:${CLIENT_KEY}`).toString('base64')}` }, {}]) {
    const res = await fetch(`${url}/v1/messages?key=${CLIENT_KEY}&api_key=${CLIENT_KEY}`, { method: 'POST', body: JSON.stringify(hello), headers: { 'content-type': 'application/json', ...headers } })
    assertError({ status: res.status, json: await res.json() }, 401, 'authentication_error')
  }
  assertError(await get(`${url}/v1/models`), 401, 'authentication_error')
  await assertNothingHappened(secured, before, 'a request with a missing or wrong key')
})

test('the dashboard, /admin/* and /metrics need the admin key; a client key does not open them', async () => {
  const secured = await withKeys()
  const { url } = secured
  const before = await footprint(secured)
  for (const path of ['/', '/admin', '/admin/accounts', '/ADMIN/accounts', '/Admin/reload', '/metrics', '/metrics/', '/admin/no-such-route']) {
    for (const headers of [{}, { 'x-api-key': CLIENT_KEY }, { authorization: `Bearer ${CLIENT_KEY}` }, { 'x-api-key': 'wrong-wrong-wrong-wrong' }] as Record<string, string>[]) {
      const res = await get(url + path, headers)
      assertError(res, 401, 'authentication_error')
      assert.match(res.headers.get('www-authenticate') ?? '', /^Basic /) // a browser asks for the admin key
    }
    for (const method of ['POST', 'DELETE']) assertError(await get(url + path, { 'x-api-key': CLIENT_KEY }, method), 401, 'authentication_error')
  }
  await assertNothingHappened(secured, before, 'an admin request without the admin key')
  // with the admin key: the guard lets it through (what answers is the app's business: the dashboard, or a 404 today)
  assert.equal((await get(`${url}/`, { 'x-api-key': ADMIN_KEY })).status, 200)
  assert.equal((await get(`${url}/`, { authorization: `Bearer ${ADMIN_KEY}` })).status, 200)
  assert.equal((await get(`${url}/`, { authorization: `Basic ${Buffer.from(`admin:${ADMIN_KEY}`).toString('base64')}` })).status, 200)
  assert.notEqual((await get(`${url}/admin/accounts`, { 'x-api-key': ADMIN_KEY })).status, 401)
})

test('probes stay open: HEAD / (Claude Code) and /healthz answer without a key', async () => {
  const { url } = await withKeys()
  assert.equal((await get(`${url}/`, {}, 'HEAD')).status, 200)
  assert.equal((await get(`${url}/healthz`)).status, 200)
})

test('without configured keys, loopback is served with any dummy key or none (Claude Code and the SDK send one)', async (t) => {
  const { url } = await startSecured(t, { accounts: mockAccounts(1) })
  for (const apiKey of ['dummy', 'sk-ant-whatever', null]) {
    const client = new Anthropic({ baseURL: url, apiKey, authToken: apiKey === null ? 'dummy' : null, maxRetries: 0 })
    assert.equal((await client.messages.create(hello)).type, 'message')
  }
  assert.equal((await get(`${url}/`)).status, 200)
})

test('client keys without admin keys: the API takes client keys, admin routes stay closed', async (t) => {
  const { url } = await startSecured(t, { accounts: mockAccounts(1), server: { auth: { keys: [CLIENT_KEY] } } })
  const client = new Anthropic({ baseURL: url, apiKey: CLIENT_KEY, maxRetries: 0 })
  assert.equal((await client.messages.create(hello)).type, 'message')
  assertError(await get(`${url}/admin/accounts`, { 'x-api-key': CLIENT_KEY }), 401, 'authentication_error')
})

test('an admin key alone guards the admin routes and leaves the loopback API open', async (t) => {
  const { url } = await startSecured(t, { accounts: mockAccounts(1), server: { auth: { adminKeys: [ADMIN_KEY] } } })
  const client = new Anthropic({ baseURL: url, apiKey: 'dummy', maxRetries: 0 })
  assert.equal((await client.messages.create(hello)).type, 'message')
  assertError(await get(`${url}/`), 401, 'authentication_error')
  assert.equal((await get(`${url}/`, { 'x-api-key': ADMIN_KEY })).status, 200)
})
