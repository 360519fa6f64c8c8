import assert from 'node:assert/strict'
import { test } from 'node:test'
import Anthropic from '@anthropic-ai/sdk'
import { ROOT, runMain } from './helpers/process.ts'

test('npm start\'s config.example.json serves through every example account, streamed and not', { timeout: 60_000 }, async (t) => {
  const run = runMain(t, ['--config', `${ROOT}config.example.json`, '--port', '0'])
  const url = await run.url
  const client = new Anthropic({ baseURL: url, apiKey: 'unused', maxRetries: 0 })
  const served = new Set<string>()
  for (let i = 0; i < 12; i++) {
    const body = { model: 'claude-sonnet-4-5-thinking', max_tokens: 64, messages: [{ role: 'user' as const, content: `Say hello ${i}` }] }
    if (i % 2 === 0) {
      const { data, response } = await client.messages.create(body).withResponse()
      assert.equal(data.type, 'message')
      served.add(response.headers.get('x-agyc-account')!)
    } else {
      const stream = client.messages.stream(body)
      const message = await stream.finalMessage()
      assert.equal(message.stop_reason, 'end_turn')
      served.add((await stream.withResponse()).response.headers.get('x-agyc-account')!)
    }
  }
  assert.deepEqual([...served].sort(), ['acc01', 'acc02', 'acc03', 'exec01', 'http01', 'stdio01'])
  // the example declares its models: /v1/models lists them, and a model nobody declares ran as an account's default
  const models = []
  for await (const model of client.models.list()) models.push(model.id)
  assert.deepEqual(models, ['claude-sonnet-5-5', 'claude-opus-5-5', 'claude-haiku-5-5'])
  const declared = await client.messages.create({ model: 'claude-haiku-5-5', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] })
  assert.equal(declared.model, 'claude-haiku-5-5')
  run.child.kill('SIGTERM')
  assert.equal(await run.exit, 0)
})
