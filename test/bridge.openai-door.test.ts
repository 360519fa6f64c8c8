/**
 * Issue 15, point 4: an OpenAI client's tools through an agent-CLI account use the tool bridge. The official `openai`
 * SDK's Chat Completions tool loop through a REAL Codex account (`codex app-server`, pointed at a scripted fake model on
 * 127.0.0.1): `finish_reason: "tool_calls"` with the client's tool, the CLI parked; the `tool` message goes back to
 * that CLI, which continues (the model sees the function output in the same conversation, not a fresh one).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import OpenAI from 'openai'
import { startFakeToolModel, type ModelCall } from './helpers/fake-tool-model.ts'
import { eventually, start } from './helpers/orchestrator.ts'

process.env.AGYC_TEST_BRIDGE_KEY = 'key-bridge'

const outputs = (call: ModelCall): unknown[] =>
  ((call.body as { input?: { type?: string; output?: unknown }[] })?.input ?? []).filter((i) => i.type === 'function_call_output').map((i) => i.output)

test('the openai SDK\'s tool loop through a codex account: the client\'s tool, run by the client, continued on the parked CLI', { timeout: 120_000 }, async (t) => {
  const model = await startFakeToolModel((call) => outputs(call).length > 0
    ? { text: ['It is sunny in Paris.'] }
    : { text: ['Let me check.'], calls: [{ name: 'get_weather', args: { city: 'Paris' } }] })
  t.after(() => model.close())
  const { url, orch, logs } = await start(t, {
    dispatcher: { requestTimeoutMs: 60_000 },
    accounts: [{ id: 'codex-a', maxConcurrency: 2, models: ['gpt-fake'], session: {
      kind: 'codex', baseUrl: `${model.url}/v1`, model: 'gpt-fake', apiKey: { fromEnv: 'AGYC_TEST_BRIDGE_KEY' }, killGraceMs: 500, idleTimeoutMs: 60_000,
    } }],
  })
  await eventually(() => orch.dispatcher.accounts.every((a) => a.state === 'up' && a.sessionUp), 'the codex account is up', 60_000)
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0, timeout: 60_000 })
  const tools = [{ type: 'function' as const, function: { name: 'get_weather', description: 'The weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }]
  const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is the weather in Paris?' }]

  const first = await client.chat.completions.create({ model: 'gpt-fake', tools, messages })
  assert.equal(first.choices[0].finish_reason, 'tool_calls')
  const call = first.choices[0].message.tool_calls![0]
  assert.ok(call.type === 'function')
  assert.equal(call.function.name, 'get_weather')
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' })
  assert.match(call.id, /^toolu_/)
  assert.equal(orch.dispatcher.accounts[0].parkedCalls, 1, 'the CLI waits on the call')

  const second = await client.chat.completions.create({ model: 'gpt-fake', tools, messages: [
    ...messages, first.choices[0].message, { role: 'tool', tool_call_id: call.id, content: '22°C and sunny' },
  ] })
  assert.equal(second.choices[0].finish_reason, 'stop')
  assert.match(second.choices[0].message.content ?? '', /sunny in Paris/)
  assert.equal(model.calls.length, 2, 'one model call for the question, one for the continuation: no fresh conversation')
  assert.match(JSON.stringify(outputs(model.calls[1])), /22°C and sunny/, 'the client\'s result reached the parked CLI')
  assert.ok(logs.some((l) => l.msg === 'request' && l.continues === call.id), 'the access line names the continuation')
  assert.equal(orch.dispatcher.accounts[0].parkedCalls, 0)
})
