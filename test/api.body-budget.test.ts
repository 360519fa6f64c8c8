/**
 * Issue 16, point 4: the body budget and large bodies. A large body is checked off the main thread and served like
 * any other (its errors named as for a small one, its session header still keying affinity); the bytes of bodies
 * being received at once are bounded: past `server.bodyBudgetBytes` a body gets a 529 with retry-after at once, and
 * the budget is given back when a body is done.
 */
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { test } from 'node:test'
import { hello, mockAccounts, post, start } from './helpers/orchestrator.ts'

const MB = 1024 * 1024

/** a valid Messages body of about `bytes`, as many small text blocks (the shape that is slow to check) */
function largeBody(bytes: number, extra: Record<string, unknown> = {}): string {
  const blocks = Array.from({ length: Math.ceil(bytes / 40) }, (_, i) => ({ type: 'text', text: `block ${i}` }))
  return JSON.stringify({ ...hello, messages: [{ role: 'user', content: blocks }], ...extra })
}

test('a large body is checked off the main thread and served; its mistakes are named as for a small one', async (t) => {
  const { url, client } = await start(t, { accounts: mockAccounts(2) })
  const body = largeBody(3 * MB)
  assert.ok(body.length > 1.5 * MB, 'the body is past the off-thread size')
  const served = await post(url, '/v1/messages', body, { 'content-type': 'application/json' })
  assert.equal(served.status, 200, served.text)
  assert.equal(served.json.type, 'message')

  const wrong = await post(url, '/v1/messages', largeBody(3 * MB, { max_tokens: -1 }), { 'content-type': 'application/json' })
  assert.equal(wrong.status, 400)
  assert.match(wrong.json.error.message, /max_tokens/, 'the field is named')
  const broken = await post(url, '/v1/messages', `${body.slice(0, -1)}`, { 'content-type': 'application/json' })
  assert.equal(broken.status, 400)
  assert.equal(broken.json.error.type, 'invalid_request_error')
  // the small path still answers as before
  assert.equal((await client.messages.create(hello)).type, 'message')
})

test('a large body with a session header goes home like a small one', async (t) => {
  const { url } = await start(t, { accounts: mockAccounts(3) })
  const headers = { 'content-type': 'application/json', 'x-agyc-session': 'big-conversation' }
  const seen = new Set<string | null>()
  for (let i = 0; i < 4; i++) {
    const res = await post(url, '/v1/messages', largeBody(2 * MB), headers)
    assert.equal(res.status, 200)
    seen.add(res.headers.get('x-agyc-account'))
  }
  assert.equal(seen.size, 1, `one account served every turn (got ${[...seen].join(', ')})`)
})

test('past the body budget a body gets a 529 with retry-after at once; the budget is given back after', async (t) => {
  const { url } = await start(t, {
    accounts: mockAccounts(1),
    server: { bodyLimitBytes: 4 * MB, bodyBudgetBytes: 4 * MB },
  })
  const port = Number(new URL(url).port)
  // a slow upload that declares 3 MB and sends its first bytes: it holds 3 MB of the budget
  const body = largeBody(3 * MB - 100_000)
  const slow = request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/messages',
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } })
  const slowAnswer = new Promise<number>((resolve, reject) => {
    slow.on('response', (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)) })
    slow.on('error', reject)
  })
  slow.write(body.slice(0, 1000))
  await new Promise((r) => setTimeout(r, 200))

  const refused = await post(url, '/v1/messages', largeBody(2 * MB), { 'content-type': 'application/json' })
  assert.equal(refused.status, 529)
  assert.equal(refused.json.error.type, 'overloaded_error')
  assert.equal(refused.headers.get('retry-after'), '1')
  // a small request fits beside it
  assert.equal((await post(url, '/v1/messages', JSON.stringify(hello), { 'content-type': 'application/json' })).status, 200)

  slow.end(body.slice(1000))
  assert.equal(await slowAnswer, 200)
  // given back: the same body now passes
  const after = await post(url, '/v1/messages', largeBody(2 * MB), { 'content-type': 'application/json' })
  assert.equal(after.status, 200, after.text)
})

test('bodyBudgetBytes below bodyLimitBytes is a config error naming the field', async () => {
  const { Config } = await import('../src/config/schema.ts')
  const parsed = Config.safeParse({ accounts: mockAccounts(1), server: { bodyLimitBytes: 4 * MB, bodyBudgetBytes: MB } })
  assert.equal(parsed.success, false)
  assert.ok(parsed.error!.issues.some((i) => i.path.join('.') === 'server.bodyBudgetBytes'))
})

test('a large body crosses as shared bytes and is decoded where it is parsed: every character arrives as sent', async (t) => {
  // the mock echoes the prompt: characters of two, three and four UTF-8 bytes, which the socket's chunks split anywhere
  const { url, client } = await start(t, {
    accounts: [{ id: 'echo', maxConcurrency: 2, session: { kind: 'mock', text: '{prompt}', deltas: 4 } }],
  })
  const words = ['naïve', 'Größe', '日本語のテキスト', 'emoji 🦊🚀', 'ascii']
  const prompt = Array.from({ length: 40_000 }, (_, i) => `${words[i % words.length]} ${i}`).join(' ')
  const body = JSON.stringify({ ...hello, messages: [{ role: 'user', content: prompt }] })
  assert.ok(Buffer.byteLength(body) > 512 * 1024, 'past the size that stays bytes')
  const answer = await post(url, '/v1/messages', body, { 'content-type': 'application/json' })
  assert.equal(answer.status, 200, answer.text)
  const same = (text: string) => text === prompt || `${text.length} characters, from "${text.slice(0, 40)}…"`
  assert.equal(same(answer.json.content[0].text as string), true, 'the worker decoded the bytes it shared with the main thread')
  const streamed = await client.messages.stream({ ...hello, messages: [{ role: 'user', content: prompt }] }).finalText()
  assert.equal(same(streamed), true, 'streamed the same')
})
