/**
 * Issue 16, point 5: protocol hygiene. Two `Host` fields are a 400 and an `Expect` we do not serve a 417, both in the
 * Anthropic error shape, logged and counted, reaching no session; an origin in `server.allowedOrigins` opens the API
 * only, never `/admin` without an admin key; the mock session fills `{prompt}` and `{model}` in literally.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import Anthropic from '@anthropic-ai/sdk'
import { assertError, assertNothingHappened, execAccount, footprint, hello, rawPost, rawRequest, sharedSecured, startSecured } from './helper.ts'

const hygienic = sharedSecured({ accounts: [execAccount()] })

const errorCount = async (url: string, code: string): Promise<number> => {
  const text = await (await fetch(`${url}/metrics`)).text()
  return Number(new RegExp(`^agyc_errors_total\\{code="${code}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0)
}

test('two Host fields are a 400 in the error shape, even when both name this server', async () => {
  const s = await hygienic()
  const before = await footprint(s)
  const counted = await errorCount(s.url, 'AGYC_INVALID_REQUEST')
  for (const hosts of [[`Host: 127.0.0.1:${s.port}`, `Host: 127.0.0.1:${s.port}`], [`Host: 127.0.0.1:${s.port}`, 'Host: evil.example']]) {
    const res = await rawRequest(s.port, rawPost('/v1/messages', hosts))
    assertError(res, 400, 'invalid_request_error')
  }
  assert.equal(await errorCount(s.url, 'AGYC_INVALID_REQUEST'), counted + 2, 'each counted in agyc_errors_total')
  assert.match(s.logText(), /"code":"AGYC_INVALID_REQUEST".*"request refused"/)
  await assertNothingHappened(s, before, 'a request with two Host fields')
  assert.equal((await rawRequest(s.port, rawPost('/v1/messages', [`Host: 127.0.0.1:${s.port}`]))).status, 200, 'one Host is served')
})

test('an Expect other than 100-continue is a 417 in the error shape, logged and counted; 100-continue is served', async () => {
  const s = await hygienic()
  const before = await footprint(s)
  for (const expect of ['Expect: 200-ok', 'Expect: 100-continue, x-more']) {
    const res = await rawRequest(s.port, rawPost('/v1/messages', [`Host: 127.0.0.1:${s.port}`, expect]))
    assertError(res, 417, 'invalid_request_error')
    assert.ok(res.headers['request-id'], 'answered by our funnel, not node\'s bare 417')
  }
  assert.equal(await errorCount(s.url, 'AGYC_EXPECTATION_FAILED'), 2)
  assert.equal(s.logText().match(/"code":"AGYC_EXPECTATION_FAILED"[^\n]*"request refused"/g)?.length, 2, 'each refusal logged')
  await assertNothingHappened(s, before, 'a request with an Expect we do not serve')
  const served = await rawRequest(s.port, rawPost('/v1/messages', [`Host: 127.0.0.1:${s.port}`, 'Expect: 100-Continue']))
  assert.equal(served.status, 200)
})

const ADMIN_KEY = 'agyc-admin-fedcba9876543210'
process.env.AGYC_TEST_HYGIENE_ADMIN_KEY = ADMIN_KEY
const app = 'https://app.example'

test('an allowed origin without keys calls the API but no /admin route, read or write', async (t) => {
  const s = await startSecured(t, { accounts: [execAccount()], server: { allowedOrigins: [app] } })
  const api = await fetch(`${s.url}/v1/messages`, { method: 'POST', body: JSON.stringify(hello), headers: { 'content-type': 'application/json', origin: app } })
  assert.equal(api.status, 200, 'the API is what allowedOrigins is for')
  await api.arrayBuffer()
  const before = await footprint(s)
  for (const [method, path] of [['POST', '/admin/accounts/exec1/drain'], ['POST', '/admin/reload'], ['GET', '/admin/accounts'], ['GET', '/metrics'], ['GET', '/']]) {
    const res = await fetch(`${s.url}${path}`, { method, headers: { origin: app, 'content-type': 'text/plain' } })
    const json = await res.json().catch(() => undefined)
    assertError({ status: res.status, json }, 403, 'permission_error')
  }
  const preflight = await fetch(`${s.url}/admin/reload`, { method: 'OPTIONS', headers: { origin: app, 'access-control-request-method': 'POST' } })
  assert.equal(preflight.status, 403, 'no CORS preflight for /admin either')
  assert.equal(s.orch.dispatcher.accounts[0].state, 'up', 'the drain did not happen')
  await assertNothingHappened(s, before, 'an allowed origin on /admin')
  // the operator's own tools are unchanged: a CLI (no Origin) and the dashboard's own origin
  assert.equal((await fetch(`${s.url}/admin/accounts`)).status, 200)
  assert.equal((await fetch(`${s.url}/admin/accounts`, { headers: { origin: s.url } })).status, 200)
})

test('with an admin key configured, an allowed origin reaches /admin only with that key', async (t) => {
  const s = await startSecured(t, {
    accounts: [execAccount()],
    server: { allowedOrigins: [app], auth: { adminKeys: [{ fromEnv: 'AGYC_TEST_HYGIENE_ADMIN_KEY' }] } },
  })
  assert.equal((await fetch(`${s.url}/admin/accounts`, { headers: { origin: app } })).status, 401)
  const keyed = await fetch(`${s.url}/admin/accounts`, { headers: { origin: app, 'x-api-key': ADMIN_KEY } })
  assert.equal(keyed.status, 200)
  assert.equal(keyed.headers.get('access-control-allow-origin'), app)
})

test('the mock fills {prompt} and {model} in literally: "$&", "$`", "$\'" and "$$" stay as sent', async (t) => {
  const s = await startSecured(t, { accounts: [{ id: 'm1', session: { kind: 'mock', text: '<{prompt}|{model}>' } }] })
  const client = new Anthropic({ baseURL: s.url, apiKey: 'test-key', maxRetries: 0 })
  const prompt = 'pay $& then $` then $\' then $$ and $1'
  const model = 'model-$&-$$'
  const answer = await client.messages.create({ ...hello, model, messages: [{ role: 'user', content: prompt }] })
  assert.deepEqual(answer.content, [{ type: 'text', text: `<${prompt}|${model}>` }])
})
