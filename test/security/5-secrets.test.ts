/**
 * Issue 6, point 5: secrets. Keys may be named by environment variable; no key appears in the log (grepped as
 * written), in an error body, in a config shown with `redactConfig` or in a config error line.
 */
import assert from 'node:assert/strict'
import { tmpdir } from 'node:os'
import { test } from 'node:test'
import Anthropic from '@anthropic-ai/sdk'
import { ConfigError, parseConfig } from '../../src/config/load.ts'
import { redactConfig, scrub } from '../../src/config/secret.ts'
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
