/**
 * Issue 6, point 3: DNS rebinding and cross-site requests. Every hostile request goes over a real socket to a real
 * orchestrator with an exec account (a real child per request); each refusal is checked for its status and Anthropic
 * error shape, and for nothing having happened: no session saw it, no child was spawned, no file was written.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertError, assertNothingHappened, execAccount, footprint, hello, mockAccounts, rawPost, rawRequest, sharedSecured, startSecured } from './helper.ts'

const json = { 'content-type': 'application/json' }
const secured = sharedSecured({ accounts: [execAccount()] })

test('a Host that is not ours is refused 403 (DNS rebinding), a loopback Host on any port is served', async () => {
  const s = await secured()
  const { port } = s
  const before = await footprint(s)
  for (const host of ['evil.example', `evil.example:${port}`, 'localhost.evil.example', '127.0.0.2', '0.0.0.0', '[::2]']) {
    assertError(await rawRequest(port, rawPost('/v1/messages', [`Host: ${host}`])), 403, 'permission_error')
  }
  await assertNothingHappened(s, before, 'a request with a foreign Host')
  const hosts = [`127.0.0.1:${port}`, 'localhost', `LOCALHOST:${port}`, '[::1]:1', '127.0.0.1']
  for (const host of hosts) {
    assert.equal((await rawRequest(port, rawPost('/v1/messages', [`Host: ${host}`]))).status, 200, host)
  }
  // the control: each request let in ran exactly one child of the exec account
  assert.equal((await footprint(s)).children - before.children, hosts.length)
})

test('an empty Host, or a Host carrying a path, "@", "#", a bad port or a second value is refused', async () => {
  const s = await secured()
  const { port } = s
  const before = await footprint(s)
  const hosts = ['', `127.0.0.1:${port}/v1`, `evil@127.0.0.1:${port}`, `127.0.0.1:${port}@evil.example`, `127.0.0.1#x`,
    `127.0.0.1:${port}#`, '127.0.0.1:', '127.0.0.1:abc', '127.0.0.1:123456', `127.0.0.1:${port}, evil.example`, '[::1', ' ']
  for (const host of hosts) {
    const res = await rawRequest(port, rawPost('/v1/messages', [`Host: ${host}`]))
    assertError(res, 403, 'permission_error')
  }
  // no Host header at all (HTTP/1.1 requires one)
  assertError(await rawRequest(port, `POST /v1/messages HTTP/1.1\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}`), 403, 'permission_error')
  await assertNothingHappened(s, before)
})

test('absolute-form targets and paths the router would read differently are refused 400', async () => {
  const s = await secured()
  const { port } = s
  const before = await footprint(s)
  const host = `Host: 127.0.0.1:${port}`
  const targets = [
    `http://127.0.0.1:${port}/v1/messages`, // absolute-form: @hono/node-server would take the URL from it, not from Host
    `http://evil.example/v1/messages`, '*', `127.0.0.1:${port}`,
    '//v1/messages', '/v1//messages', '/./v1/messages', '/v1/./messages', '/x/../v1/messages', '/v1/messages/..',
    '/v1/%6dessages', '/v1/messages%2f', '/%2e%2e/v1/messages', '/v1/messages\\', '/v1/me"ssages',
  ]
  for (const target of targets) {
    const res = await rawRequest(port, rawPost(target, [host]))
    assertError(res, 400, 'invalid_request_error')
  }
  await assertNothingHappened(s, before)
  // the query is not the path: Claude Code's `?beta=true` is served
  assert.equal((await rawRequest(port, rawPost('/v1/messages?beta=true', [host]))).status, 200)
})

test('a foreign Origin is refused 403, also for the "simple" text/plain POST a page sends without preflight', async () => {
  const s = await secured()
  const { url } = s
  const before = await footprint(s)
  const body = JSON.stringify(hello)
  for (const origin of ['https://evil.example', 'http://localhost:3000', 'http://127.0.0.1', 'null', `${url}.evil.example`]) {
    for (const contentType of ['text/plain', 'application/json', 'application/x-www-form-urlencoded']) {
      const res = await fetch(`${url}/v1/messages`, { method: 'POST', body, headers: { origin, 'content-type': contentType } })
      assertError({ status: res.status, json: await res.json() }, 403, 'permission_error')
      assert.equal(res.headers.get('access-control-allow-origin'), null)
    }
  }
  await assertNothingHappened(s, before)
})

test('Sec-Fetch-Site: cross-site (or same-site) is refused even without an Origin', async () => {
  const s = await secured()
  const { url } = s
  const before = await footprint(s)
  for (const site of ['cross-site', 'same-site']) {
    const res = await fetch(`${url}/v1/messages`, { method: 'POST', body: JSON.stringify(hello), headers: { ...json, 'sec-fetch-site': site } })
    assertError({ status: res.status, json: await res.json() }, 403, 'permission_error')
    const get = await fetch(`${url}/v1/models`, { headers: { 'sec-fetch-site': site } })
    assert.equal(get.status, 403)
  }
  await assertNothingHappened(s, before)
})

test('no Origin and an allowed Host is a CLI: served, like Claude Code with its browser-access header', async () => {
  const { url } = await secured()
  const res = await fetch(`${url}/v1/messages?beta=true`, {
    method: 'POST', body: JSON.stringify(hello),
    headers: { ...json, 'anthropic-dangerous-direct-browser-access': 'true', 'x-api-key': 'dummy', 'anthropic-version': '2023-06-01' },
  })
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('access-control-allow-origin'), null) // no CORS headers unless configured
  // this page's own origin (the dashboard calling its API) is same-origin, not cross-site
  const same = await fetch(`${url}/v1/messages`, { method: 'POST', body: JSON.stringify(hello), headers: { ...json, origin: url, 'sec-fetch-site': 'same-origin' } })
  assert.equal(same.status, 200)
  assert.equal(same.headers.get('access-control-allow-origin'), null)
})

test('configured origins and host names are served, with CORS headers for those origins only', async (t) => {
  const { port, url } = await startSecured(t, {
    accounts: mockAccounts(1),
    server: { allowedOrigins: ['https://app.example'], allowedHosts: ['proxy.lan'] },
  })
  const res = await fetch(`${url}/v1/messages`, { method: 'POST', body: JSON.stringify(hello), headers: { ...json, origin: 'https://app.example', 'sec-fetch-site': 'cross-site' } })
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('access-control-allow-origin'), 'https://app.example')
  const preflight = await fetch(`${url}/v1/messages`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } })
  assert.equal(preflight.status, 204)
  assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /x-api-key/)
  const foreign = await fetch(`${url}/v1/messages`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } })
  assert.equal(foreign.status, 403)
  assert.equal(foreign.headers.get('access-control-allow-origin'), null)
  assert.equal((await rawRequest(port, rawPost('/v1/messages', [`Host: proxy.lan:${port}`]))).status, 200)
  assert.equal((await rawRequest(port, rawPost('/v1/messages', [`Host: other.lan:${port}`]))).status, 403)
})
