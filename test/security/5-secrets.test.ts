/**
 * Issue 6, point 5: secrets. Keys may be named by environment variable; no key appears in the log (grepped as
 * written), in an error body, in a config shown with `redactConfig`, in a config error line, in `/admin/*` or in
 * `agyc validate` output; neither does an account's own key, which only its worker reads (an upstream that quotes it
 * back in an error must not carry it to the client).
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import Anthropic from '@anthropic-ai/sdk'
import { ConfigError, parseConfig } from '../../src/config/load.ts'
import { redactConfig, scrub } from '../../src/config/secret.ts'
import { runAgyc } from '../helpers/process.ts'
import { hello, mockAccounts, startSecured } from './helper.ts'

const CLIENT_KEY = 'sk-agyc-client-5a5a5a5a5a5a5a5a'
const ADMIN_KEY = 'sk-agyc-admin-7b7b7b7b7b7b7b7b'
process.env.AGYC_SECRET_TEST_CLIENT = CLIENT_KEY
process.env.AGYC_SECRET_TEST_ADMIN = ADMIN_KEY

const config = {
  accounts: mockAccounts(2),
  dispatcher: { strictModels: true },
  server: { auth: { keys: [{ fromEnv: 'AGYC_SECRET_TEST_CLIENT' }], adminKeys: [{ fromEnv: 'AGYC_SECRET_TEST_ADMIN' }] } },
}

test('no key appears in the log, whatever a client sends: right keys, wrong keys, keys in fields', async (t) => {
  const { url, orch, logText } = await startSecured(t, config)
  const client = new Anthropic({ baseURL: url, apiKey: CLIENT_KEY, maxRetries: 0 })
  await client.messages.create({ ...hello, model: 'claude-test-1' }).catch(() => undefined)
  // a client quoting keys where they get logged or echoed: the model name, metadata, the path, the Host
  const echoed = await client.messages.create({ ...hello, model: `model-${ADMIN_KEY}`, metadata: { user_id: CLIENT_KEY } }).then(() => undefined, (e: unknown) => e)
  assert.ok(echoed instanceof Anthropic.NotFoundError)
  assert.doesNotMatch(JSON.stringify(echoed.error), /7b7b7b7b7b7b7b7b/, 'the error body quotes no key')
  await fetch(`${url}/v1/${CLIENT_KEY}`, { headers: { 'x-api-key': ADMIN_KEY } })
  await fetch(`${url}/admin/${ADMIN_KEY}`, { headers: { authorization: `Bearer ${CLIENT_KEY}` } })
  await fetch(`${url}/v1/messages`, { method: 'POST', headers: { 'x-api-key': ADMIN_KEY.replace('7b', '7c'), origin: `http://${ADMIN_KEY}.evil` } })
  // an error whose message quotes a key (an upstream repeating what it was sent) goes through the same scrubbing
  orch.log.error({ err: new Error(`upstream refused key ${CLIENT_KEY}`), stderr: `auth: ${ADMIN_KEY}\n` }, 'upstream failed')
  const text = logText()
  assert.ok(text.includes('request refused') && text.includes('upstream failed'), 'the log was captured')
  assert.equal(text.includes(CLIENT_KEY), false, 'client key in the log')
  assert.equal(text.includes(ADMIN_KEY), false, 'admin key in the log')
  assert.equal(text.includes('5a5a5a5a5a5a5a5a'), false)
  assert.equal(text.includes('7b7b7b7b7b7b7b7b'), false)
})

test('a config shown through redactConfig carries no key; config errors name the variable, never a value', async (t) => {
  const { orch } = await startSecured(t, config)
  const shown = JSON.stringify(redactConfig(orch.config))
  assert.equal(shown.includes(CLIENT_KEY), false)
  assert.equal(shown.includes(ADMIN_KEY), false)
  assert.match(shown, /\[redacted\]/)
  assert.equal(scrub(`x ${CLIENT_KEY} y`), 'x [redacted] y')

  delete process.env.AGYC_SECRET_TEST_MISSING
  const problems = (raw: unknown): string[] => {
    try { parseConfig(raw, tmpdir()); return [] } catch (err) { return err instanceof ConfigError ? [...err.problems] : [String(err)] }
  }
  const missing = problems({ accounts: mockAccounts(1), server: { auth: { keys: [{ fromEnv: 'AGYC_SECRET_TEST_MISSING' }] } } })
  assert.deepEqual(missing, ['server.auth.keys[0]: environment variable AGYC_SECRET_TEST_MISSING is not set'])
  // a key too short to be one, and a valid key beside another mistake: the lines name paths, not values
  const short = problems({ accounts: mockAccounts(1), server: { auth: { keys: ['short-key-123'] } } })
  assert.equal(short.length, 1)
  assert.match(short[0], /^server\.auth\.keys\[0\]: expected at least 16 characters$/)
  const other = problems({ accounts: [{ id: 'bad id', session: { kind: 'mock' } }], server: { auth: { keys: [CLIENT_KEY], adminKeys: [ADMIN_KEY] } } })
  assert.ok(other.length > 0)
  for (const line of [...missing, ...short, ...other]) {
    assert.equal(line.includes(CLIENT_KEY) || line.includes(ADMIN_KEY) || line.includes('short-key-123'), false, line)
  }
})

test('an account\'s own key, read from the environment, never comes back: not from an upstream quoting it, not in the log, /admin/* or agyc validate', async (t) => {
  const UPSTREAM_KEY = 'sk-upstream-9c9c9c9c9c9c9c9c'
  process.env.AGYC_SECRET_TEST_UPSTREAM = UPSTREAM_KEY
  // an upstream that refuses the key and repeats it, as some do ("invalid x-api-key: sk-…")
  const upstream = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      res.writeHead(401, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ type: 'error', error: { type: 'authentication_error', message: `invalid x-api-key: ${String(req.headers['x-api-key'])}` } }))
    })
  })
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r))
  t.after(() => new Promise<void>((r) => upstream.close(() => r())))
  const raw = {
    accounts: [{ id: 'h', session: { kind: 'http', baseUrl: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, apiKey: { fromEnv: 'AGYC_SECRET_TEST_UPSTREAM' } } }],
    server: { auth: { adminKeys: [{ fromEnv: 'AGYC_SECRET_TEST_ADMIN' }] } },
  }
  const { url, logText } = await startSecured(t, raw)
  for (const stream of [false, true]) {
    const res = await fetch(`${url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...hello, stream }) })
    const body = await res.text()
    assert.equal(res.status, 401)
    assert.equal(body.includes(UPSTREAM_KEY), false, `the error body quotes the account key: ${body}`)
  }
  for (const path of ['/admin/accounts', '/metrics']) {
    const text = await (await fetch(url + path, { headers: { 'x-api-key': ADMIN_KEY } })).text()
    assert.ok(text.length > 0)
    assert.equal(text.includes(UPSTREAM_KEY), false, `${path} shows the account key`)
  }
  assert.match(logText(), /"status":401/, 'the requests were logged')
  assert.equal(logText().includes(UPSTREAM_KEY), false, 'the account key is in the log')
  // agyc validate shows no secret either, for a good file and for one with a mistake
  const dir = mkdtempSync(join(tmpdir(), 'agyc-secret-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  for (const config of [raw, { ...raw, accounts: [...raw.accounts, { id: 'bad id', session: { kind: 'mock' } }] }]) {
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config))
    const ran = await runAgyc(['validate', join(dir, 'config.json')])
    const out = ran.stdout + ran.stderr
    assert.ok(out.length > 0)
    for (const secret of [UPSTREAM_KEY, ADMIN_KEY]) assert.equal(out.includes(secret), false, `agyc validate printed a secret: ${out}`)
  }
})
