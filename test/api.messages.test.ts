import assert from 'node:assert/strict'
import { test } from 'node:test'
import { hello, mockAccounts, start } from './helpers/orchestrator.ts'

test('messages.create answers in the Anthropic shape and names its account', async (t) => {
  const { client } = await start(t, { accounts: mockAccounts(2) })
  const { data, response } = await client.messages.create(hello).withResponse()
  assert.equal(data.type, 'message')
  assert.equal(data.role, 'assistant')
  assert.equal(data.stop_reason, 'end_turn')
  assert.match((data.content[0] as { text: string }).text, /Hello from acc0[12]/)
  assert.ok(data.usage.output_tokens > 0)
  const account = response.headers.get('x-agyc-account')
  assert.ok(account)
  assert.equal((data as unknown as { metadata: { account_id: string } }).metadata.account_id, account)
  assert.match(response.headers.get('request-id') ?? '', /^req_/)
})
