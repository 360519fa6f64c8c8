/**
 * Issue 15: the OpenAI front doors with the official `openai` SDK as the client: Chat Completions and Responses,
 * streamed and not, a tool round trip through an `http` account (the fixture upstream speaks Anthropic and calls
 * get_weather), models.list, and errors in OpenAI's shape naming the parameter.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { test, type TestContext } from 'node:test'
import OpenAI from 'openai'
import { post, start } from './helpers/orchestrator.ts'

const UPSTREAM = new URL('./fixtures/http-upstream.mjs', import.meta.url).pathname

async function upstream(t: TestContext): Promise<string> {
  const proc: ChildProcess = spawn(process.execPath, [UPSTREAM], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.after(() => { proc.kill('SIGKILL') })
  return new Promise<string>((resolve, reject) => {
    proc.stdout!.setEncoding('utf8').once('data', (line: string) => resolve(/listening (\S+)/.exec(line)![1]))
    proc.once('exit', () => reject(new Error('fixture upstream exited')))
  })
}

const openai = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: 'test-key', maxRetries: 0 })
const weather = [{ type: 'function' as const, function: { name: 'get_weather', description: 'The weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }]

test('chat.completions: whole and streamed answers from mock accounts, usage included when asked', async (t) => {
  const { url } = await start(t, { accounts: [{ id: 'm', maxConcurrency: 4, models: ['claude-test-1'], session: { kind: 'mock', text: 'Hello {prompt}' } }] })
  const client = openai(url)
  const whole = await client.chat.completions.create({ model: 'claude-test-1', messages: [{ role: 'developer', content: 'be brief' }, { role: 'user', content: 'there' }] })
  assert.equal(whole.object, 'chat.completion')
  assert.equal(whole.choices[0].message.content, 'Hello there')
  assert.equal(whole.choices[0].finish_reason, 'stop')
  assert.ok(whole.usage!.completion_tokens > 0)

  const stream = await client.chat.completions.create({ model: 'claude-test-1', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'stream' }] })
  let text = ''
  const finish: (string | null)[] = []
  let usageChunks = 0
  for await (const chunk of stream) {
    if (chunk.usage) usageChunks++
    for (const choice of chunk.choices) {
      text += choice.delta.content ?? ''
      finish.push(choice.finish_reason)
    }
  }
  assert.equal(text, 'Hello stream')
  assert.equal(finish.filter((f) => f !== null).join(), 'stop', 'one finish reason, on the last choice chunk')
  assert.equal(usageChunks, 1, 'usage once, in its own chunk')

  const models = await client.models.list()
  assert.deepEqual(models.data.map((m) => m.id), ['claude-test-1'])
  assert.equal(models.data[0].object, 'model')
})

test('chat.completions: a tool round trip through an http account, streamed arguments concatenating to the same object', async (t) => {
  const up = await upstream(t)
  const { url } = await start(t, { accounts: [{ id: 'h', session: { kind: 'http', baseUrl: up } }] })
  const client = openai(url)
  const ask = { model: 'claude-test-1', tools: weather, messages: [{ role: 'user' as const, content: 'weather? [[tool]]' }] }
  const whole = await client.chat.completions.create(ask)
  const call = whole.choices[0].message.tool_calls![0]
  assert.equal(whole.choices[0].finish_reason, 'tool_calls')
  assert.equal(call.type === 'function' && call.function.name, 'get_weather')
  assert.deepEqual(call.type === 'function' && JSON.parse(call.function.arguments), { city: 'Paris' })

  const stream = await client.chat.completions.create({ ...ask, stream: true })
  let args = ''
  let name = ''
  let id = ''
  let finish: string | null = null
  for await (const chunk of stream) {
    for (const choice of chunk.choices) {
      for (const tc of choice.delta.tool_calls ?? []) {
        if (tc.id) id = tc.id
        if (tc.function?.name) name = tc.function.name
        args += tc.function?.arguments ?? ''
      }
      finish = choice.finish_reason ?? finish
    }
  }
  assert.equal(name, 'get_weather')
  assert.deepEqual(JSON.parse(args), { city: 'Paris' }, 'the streamed pieces make the same object')
  assert.equal(finish, 'tool_calls')

  const final = await client.chat.completions.create({
    model: 'claude-test-1', tools: weather,
    messages: [...ask.messages, { role: 'assistant', content: null, tool_calls: [{ id, type: 'function', function: { name, arguments: args } }] },
      { role: 'tool', tool_call_id: id, content: '18°C and sunny' }],
  })
  assert.equal(final.choices[0].finish_reason, 'stop')
  assert.match(final.choices[0].message.content ?? '', /http-upstream heard/)
})

test('responses: whole and streamed, with a function call round trip', async (t) => {
  const up = await upstream(t)
  const { url } = await start(t, { accounts: [{ id: 'h', session: { kind: 'http', baseUrl: up } }] })
  const client = openai(url)
  const tools = [{ type: 'function' as const, name: 'get_weather', description: 'weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: false }]
  const first = await client.responses.create({ model: 'claude-test-1', instructions: 'use tools', input: 'weather? [[tool]]', tools, store: false })
  const call = first.output.find((item) => item.type === 'function_call')
  assert.ok(call && call.type === 'function_call')
  assert.equal(call.name, 'get_weather')
  assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' })

  const events: string[] = []
  let args = ''
  const stream = await client.responses.create({ model: 'claude-test-1', input: 'weather? [[tool]]', tools, stream: true })
  for await (const event of stream) {
    events.push(event.type)
    if (event.type === 'response.function_call_arguments.delta') args += event.delta
  }
  assert.deepEqual(JSON.parse(args), { city: 'Paris' })
  assert.equal(events[0], 'response.created')
  assert.equal(events.at(-1), 'response.completed')
  assert.ok(events.indexOf('response.output_text.delta') < events.indexOf('response.function_call_arguments.delta'))
  assert.ok(events.includes('response.function_call_arguments.done'))

  const final = await client.responses.create({
    model: 'claude-test-1', tools, store: false,
    input: [{ role: 'user', content: 'weather? [[tool]]' }, { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
      { type: 'function_call_output', call_id: call.call_id, output: '18°C' }],
  })
  assert.match(final.output_text, /http-upstream heard/)
  assert.equal(final.status, 'completed')
})

test('what cannot be expressed is a 400 in OpenAI\'s shape naming the parameter; other errors keep their status', async (t) => {
  const { url } = await start(t, { accounts: [{ id: 'm', session: { kind: 'mock' } }] })
  const client = openai(url)
  await assert.rejects(client.chat.completions.create({ model: 'claude-test-1', n: 2, messages: [{ role: 'user', content: 'hi' }] }),
    (err: unknown) => err instanceof OpenAI.BadRequestError && err.param === 'n' && (err.error as { type?: string }).type === 'invalid_request_error')
  await assert.rejects(client.responses.create({ model: 'claude-test-1', input: 'hi', previous_response_id: 'resp_1' }),
    (err: unknown) => err instanceof OpenAI.BadRequestError && err.param === 'previous_response_id')
  const broken = await post(url, '/v1/chat/completions', '{"model":', { 'content-type': 'application/json' })
  assert.equal(broken.status, 400)
  assert.deepEqual(Object.keys(broken.json.error).sort(), ['code', 'message', 'param', 'type'])
  assert.equal(broken.json.error.code, 'agyc_malformed_json')
})

test('an OpenAI client key goes as Authorization: Bearer', async (t) => {
  const { url } = await start(t, { server: { auth: { keys: ['sk-team-one-0123456789'] } }, accounts: [{ id: 'm', session: { kind: 'mock' } }] })
  await assert.rejects(new OpenAI({ baseURL: `${url}/v1`, apiKey: 'wrong', maxRetries: 0 }).chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'hi' }] }),
    (err: unknown) => err instanceof OpenAI.AuthenticationError)
  const ok = await new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sk-team-one-0123456789', maxRetries: 0 }).chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'hi' }] })
  assert.equal(ok.object, 'chat.completion')
})
