/**
 * Issue 6, point 6: nothing in a request chooses where it goes. A second local server stands in for the place an
 * attacker would like the request (and the account's credentials) sent (LiteLLM CVE-2024-6587's `api_base`); requests
 * name it in every body field, metadata field and header such a proxy might read, and it must never be reached.
 */
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { hello, mockAccounts, rawPost, rawRequest, startSecured } from './helper.ts'

test('body fields, metadata and headers naming an upstream, command or credentials are ignored; the canary is never reached', async (t) => {
  let hits = 0
  const canary = createServer((req, res) => { hits++; res.end('{}') })
  await new Promise<void>((r) => canary.listen(0, '127.0.0.1', r))
  t.after(() => new Promise<void>((r) => canary.close(() => r())))
  const canaryUrl = `http://127.0.0.1:${(canary.address() as AddressInfo).port}`

  const { url, port, orch } = await startSecured(t, { accounts: mockAccounts(2) })
  const configBefore = JSON.stringify(orch.config)
  const steer = {
    api_base: canaryUrl, base_url: canaryUrl, baseURL: canaryUrl, anthropic_base_url: canaryUrl, upstream: canaryUrl,
    url: canaryUrl, endpoint: canaryUrl, proxy: canaryUrl, api_key: 'attacker-key', headers: { authorization: 'Bearer x' },
    command: ['/bin/sh', '-c', `curl ${canaryUrl}`], args: ['--evil'], env: { ANTHROPIC_BASE_URL: canaryUrl }, cwd: '/',
    stateDir: '/tmp', account: 'acc02', session: { kind: 'http', url: canaryUrl },
  }
  const body = {
    ...hello, ...steer,
    metadata: { user_id: 'u', ...steer, routing: { ...steer } },
    messages: [{ role: 'user', content: `[[mock:crash]] [[mock:fail AGYC_INTERNAL]] ${canaryUrl}` }],
  }
  const headers = {
    'content-type': 'application/json', 'x-agyc-upstream': canaryUrl, 'x-agyc-account': 'acc02', 'x-api-base': canaryUrl,
    'anthropic-base-url': canaryUrl, 'x-forwarded-host': new URL(canaryUrl).host, 'x-forwarded-proto': 'http',
    forwarded: `host=${new URL(canaryUrl).host}`, 'x-original-url': canaryUrl, 'x-rewrite-url': canaryUrl,
  }
  for (const stream of [false, true]) {
    const res = await fetch(`${url}/v1/messages`, { method: 'POST', body: JSON.stringify({ ...body, stream }), headers })
    assert.equal(res.status, 200)
    assert.match(res.headers.get('x-agyc-account') ?? '', /^acc0[12]$/)
    const text = await res.text()
    // answered by a configured account's own session (its text cut into deltas when streamed), directives ignored
    const said = stream ? [...text.matchAll(/"text_delta","text":"([^"]*)"/g)].map((m) => m[1]).join('') : text
    assert.match(said, /Hello from acc0[12]/)
  }
  // the canary's address in an absolute-form target is refused before anything (@hono/node-server would route by it)
  assert.equal((await rawRequest(port, rawPost(`${canaryUrl}/v1/messages`, [`Host: 127.0.0.1:${port}`]))).status, 400)

  assert.equal(hits, 0, 'the canary was reached')
  assert.equal(JSON.stringify(orch.config), configBefore, 'the running config is unchanged')
  for (const account of orch.dispatcher.accounts) assert.equal(account.childPids.size, 0, 'no process was spawned')
})
