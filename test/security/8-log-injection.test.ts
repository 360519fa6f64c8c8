/**
 * Issue 6, point 8: log injection. Client-supplied strings (model names, metadata, targets, header values) carry
 * newlines and fake log lines; in JSON and in pretty mode the log keeps exactly the lines we wrote. The account is an
 * exec one (a real child per request): the hostile requests that are refused spawn nothing and write nothing.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertNothingHappened, execAccount, footprint, hello, rawPost, rawRequest, startSecured, type Secured } from './helper.ts'

const FORGED_JSON = '{"level":50,"time":1,"pid":1,"msg":"FORGED admin login"}'
const FORGED_PRETTY = '[12:00:00.000] ERROR: FORGED admin login'

async function sendHostileStrings(secured: Secured): Promise<void> {
  const { url, port } = secured
  const names = [`x\n${FORGED_JSON}`, `x\r\n${FORGED_PRETTY}`, `x\u2028${FORGED_JSON}`, `x\u0085${FORGED_PRETTY}`, `x\u001b[2K\r${FORGED_PRETTY}`]
  for (const model of names) {
    for (const stream of [false, true]) {
      const res = await fetch(`${url}/v1/messages`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...hello, model, stream, metadata: { user_id: `u\n${FORGED_JSON}` } }),
      })
      await res.text()
      assert.equal(res.status, 200)
    }
  }
  // refused requests log their target, Host and Origin: header values cannot hold a newline, but can hold the rest
  const before = await footprint(secured)
  await rawRequest(port, rawPost(`/v1/x"}${encodeURIComponent(FORGED_JSON)}`, [`Host: 127.0.0.1:${port}`]))
  await rawRequest(port, rawPost('/v1/messages', [`Host: evil.example "${FORGED_PRETTY}`]))
  await rawRequest(port, rawPost('/v1/messages', [`Host: 127.0.0.1:${port}`, `Origin: http://evil.example\t${FORGED_JSON}`]))
  await assertNothingHappened(secured, before)
}

test('JSON logs: every line is one record we wrote; a forged record inside a model name stays inside its field', async (t) => {
  const secured = await startSecured(t, { accounts: [execAccount()] })
  await sendHostileStrings(secured)
  const lines = secured.logText().split('\n').filter((l) => l !== '')
  const records = lines.map((line) => JSON.parse(line) as { msg: string; model?: string })
  assert.equal(records.filter((r) => r.msg === 'request').length, 10)
  assert.ok(records.filter((r) => r.msg === 'request refused').length >= 3)
  assert.equal(records.some((r) => r.msg.includes('FORGED')), false, 'a forged record')
  // the hostile text is kept, escaped, where it belongs
  assert.ok(records.some((r) => r.model === `x\n${FORGED_JSON}`))
})

test('pretty logs: every line starts with our timestamp and level, or is an indented continuation', async (t) => {
  const secured = await startSecured(t, { accounts: [execAccount()], log: { level: 'info', pretty: true } })
  await sendHostileStrings(secured)
  const lines = secured.logText().split('\n').filter((l) => l !== '')
  assert.ok(lines.length > 20, 'the log was captured')
  for (const line of lines) {
    assert.match(line, /^(\x1b\[[0-9;]*m)*\[\d\d:\d\d:\d\d\.\d{3}\] (\x1b\[[0-9;]*m)*(INFO|WARN|ERROR|DEBUG)|^\s/, `a line we did not write: ${JSON.stringify(line)}`)
    if (!/^\s/.test(line)) assert.doesNotMatch(line, /FORGED/, `a forged header line: ${JSON.stringify(line)}`)
  }
})
