/**
 * Issue 15, point 5: an `http` account with `dialect: "openai-chat"` in front of an OpenAI-compatible upstream (a
 * fixture process): text and streams, tool calls, usage with cached tokens, and a 429 with retry-after cooling the
 * account, as for the Anthropic upstream. The client is the Anthropic SDK, and the openai SDK through its own door.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { test, type TestContext } from 'node:test'
import OpenAI from 'openai'
import { apiError, start, textOf } from './helpers/orchestrator.ts'

const FIXTURE = new URL('./fixtures/openai-upstream.mjs', import.meta.url).pathname

async function upstream(t: TestContext): Promise<string> {
  const proc: ChildProcess = spawn(process.execPath, [FIXTURE], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.after(() => { proc.kill('SIGKILL') })
  return new Promise<string>((resolve, reject) => {
    proc.stdout!.setEncoding('utf8').once('data', (line: string) => resolve(/listening (\S+)/.exec(line)![1]))
    proc.once('exit', () => reject(new Error('fixture exited')))
  })
}

const account = (id: string, url: string) => ({ id, session: { kind: 'http', dialect: 'openai-chat', baseUrl: `${url}/v1`, apiKey: { fromEnv: 'AGYC_TEST_OPENAI_KEY' } } })
process.env.AGYC_TEST_OPENAI_KEY = 'sk-fixture-key-0123456789'
const ask = (content: string, extra: object = {}) => ({ model: 'gpt-fake', max_tokens: 64, messages: [{ role: 'user' as const, content }], ...extra })
const tools = [{ name: 'get_weather', description: 'weather', input_schema: { type: 'object' as const, properties: { city: { type: 'string' } } } }]

test('openai-chat upstream: text whole and streamed, the key as a bearer token, usage with cached tokens', async (t) => {
  const url = await upstream(t)
  const { client, orch } = await start(t, { accounts: [account('o', url)] })
  const whole = await client.messages.create(ask('hello'))
  assert.equal(textOf(whole), 'openai-upstream heard: hello')
  assert.equal(whole.stop_reason, 'end_turn')
  assert.equal(whole.usage.cache_read_input_tokens, 40)
  assert.equal(whole.usage.input_tokens, 10)
  const last = await (await fetch(`${url}/last`)).json() as { url: string; authorization: string; body: { messages: unknown[] } }
  assert.equal(last.url, '/v1/chat/completions')
  assert.equal(last.authorization, 'Bearer sk-fixture-key-0123456789')

  const stream = client.messages.stream(ask('streamed'))
  const final = await stream.finalMessage()
  assert.equal(textOf(final), 'openai-upstream heard: streamed')
  assert.equal(final.usage.output_tokens, 7)
  assert.ok(orch.dispatcher.ledger.totals, 'usage is recorded as for any account')
})

test('openai-chat upstream: tool calls come back as tool_use blocks, a text-and-call chunk keeping both', async (t) => {
  const url = await upstream(t)
  const { client, url: orchUrl } = await start(t, { accounts: [account('o', url)] })
  const whole = await client.messages.create(ask('weather? [[tool]]', { tools }))
  const use = whole.content.find((b) => b.type === 'tool_use')
  assert.equal(whole.stop_reason, 'tool_use')
  assert.ok(use && use.type === 'tool_use' && use.name === 'get_weather')
  assert.deepEqual(use.input, { city: 'Paris' })

  const streamed = await client.messages.stream(ask('weather? [[tool]]', { tools })).finalMessage()
  assert.equal(textOf(streamed), 'openai-upstream heard: weather? [[tool]]', 'the text of the chunk that also started the call is kept')
  const call = streamed.content.find((b) => b.type === 'tool_use')
  assert.ok(call && call.type === 'tool_use')
  assert.deepEqual(call.input, { city: 'Paris' })
  assert.equal(streamed.stop_reason, 'tool_use')

  // the result goes back as a `tool` message
  const after = await client.messages.create({ model: 'gpt-fake', max_tokens: 64, tools, messages: [
    { role: 'user', content: 'weather? [[tool]]' }, { role: 'assistant', content: streamed.content },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: 'sunny' }] },
  ] })
  assert.equal(textOf(after), 'openai-upstream heard: tool said: sunny')

  // an OpenAI client in front of an OpenAI upstream: translated both ways
  const openai = new OpenAI({ baseURL: `${orchUrl}/v1`, apiKey: 'x', maxRetries: 0 })
  const chat = await openai.chat.completions.create({ model: 'gpt-fake', messages: [{ role: 'user', content: 'weather? [[tool]]' }], tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }] })
  assert.equal(chat.choices[0].finish_reason, 'tool_calls')
  assert.equal(chat.usage?.prompt_tokens_details?.cached_tokens, 40)
})

test('openai-chat upstream: a 429 with retry-after cools the account and the next account serves', async (t) => {
  const url = await upstream(t)
  const { client, orch } = await start(t, { dispatcher: { maxAttempts: 1 }, accounts: [account('o1', url), account('o2', url)] })
  const err = await apiError(client.messages.create(ask('[[status 429]] [[retry-after 30]]')))
  assert.equal(err.status, 429)
  const cooled = orch.dispatcher.accounts.find((a) => a.outlier.state() === 'cooling')
  assert.ok(cooled, 'one account is cooling down')
  for (let i = 0; i < 4; i++) {
    const { response } = await client.messages.create(ask('hello')).withResponse()
    assert.notEqual(response.headers.get('x-agyc-account'), cooled.id, 'the cooled account takes no turn')
  }
})
