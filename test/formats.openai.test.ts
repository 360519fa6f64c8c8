/**
 * Golden tests of the OpenAI translators (src/formats/), one per translation bug users keep reporting in the peers
 * (docs/api.md, "OpenAI doors"); each fails without its rule. Pure functions: no server.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { FormatError, chatToMessages, chatUsage, finishReason, messageToChat } from '../src/formats/openai-chat.ts'
import { ChatStream, DONE } from '../src/formats/openai-chat-stream.ts'
import { responsesToMessages } from '../src/formats/openai-responses.ts'
import { ResponsesStream } from '../src/formats/openai-responses-stream.ts'

const chunks = (text: string) => text.split('\n\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)))
const toolEvents = [
  { type: 'message_start', message: { id: 'msg_1', model: 'm', usage: { input_tokens: 10, output_tokens: 0, cache_read_input_tokens: 90 } } },
  { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
  { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Let me look.' } },
  { type: 'content_block_stop', index: 0 },
  { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_a', name: 'get_weather', input: {} } },
  { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"city":' } },
  { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: ' "Paris"}' } },
  { type: 'content_block_stop', index: 1 },
  { type: 'content_block_start', index: 2, content_block: { type: 'tool_use', id: 'toolu_b', name: 'get_time', input: {} } },
  { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '{}' } },
  { type: 'content_block_stop', index: 2 },
  { type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 30 } },
  { type: 'message_stop' },
]

function streamed(includeUsage = true): Record<string, any>[] {
  const stream = new ChatStream('msg_1', 'm', includeUsage)
  return chunks(toolEvents.map((e) => stream.event(e)).join(''))
}

test('streamed tool-call arguments arrive piece by piece as they come, never only at the end and never lost', () => {
  const args = streamed().flatMap((c) => c.choices.flatMap((ch: any) => (ch.delta.tool_calls ?? []).filter((t: any) => t.index === 0).map((t: any) => t.function.arguments)))
  assert.deepEqual(args, ['', '{"city":', ' "Paris"}'])
  assert.deepEqual(JSON.parse(args.join('')), { city: 'Paris' })
})

test('each tool call keeps its own index (from the Anthropic block index), its id and its name on its first chunk', () => {
  const calls = streamed().flatMap((c) => c.choices.flatMap((ch: any) => ch.delta.tool_calls ?? []))
  const firsts = calls.filter((t: any) => t.id)
  assert.deepEqual(firsts.map((t: any) => [t.index, t.id, t.function.name]), [[0, 'toolu_a', 'get_weather'], [1, 'toolu_b', 'get_time']])
  assert.ok(calls.every((t: any) => t.function.name === undefined || t.function.name !== ''), 'no empty names')
})

test('a turn that ends on tool calls finishes with tool_calls, never stop', () => {
  const finishes = streamed().flatMap((c) => c.choices.map((ch: any) => ch.finish_reason)).filter(Boolean)
  assert.deepEqual(finishes, ['tool_calls'])
  assert.equal(finishReason('tool_use'), 'tool_calls')
  assert.equal(finishReason('max_tokens'), 'length')
  assert.equal(finishReason('refusal'), 'content_filter')
  assert.equal(finishReason('stop_sequence'), 'stop')
})

test('usage comes once, in its own chunk after the finish, with the cached tokens counted and named', () => {
  const all = streamed()
  const withUsage = all.filter((c) => c.usage)
  assert.equal(withUsage.length, 1)
  assert.equal(all.indexOf(withUsage[0]), all.length - 1)
  assert.deepEqual(withUsage[0].choices, [])
  assert.equal(withUsage[0].usage.prompt_tokens_details.cached_tokens, 90)
  assert.equal(withUsage[0].usage.prompt_tokens, 100)
  assert.equal(streamed(false).filter((c) => c.usage).length, 0, 'not asked: no usage chunk')
  assert.deepEqual(chatUsage({ input_tokens: 5, output_tokens: 1, cache_read_input_tokens: 7, cache_creation_input_tokens: 3 }),
    { prompt_tokens: 15, completion_tokens: 1, total_tokens: 16, prompt_tokens_details: { cached_tokens: 7 } })
})

test('the stream starts with the role and ends with [DONE]', () => {
  const stream = new ChatStream('msg_1', 'm', false)
  const text = toolEvents.map((e) => stream.event(e)).join('')
  assert.equal(chunks(text)[0].choices[0].delta.role, 'assistant')
  assert.ok(text.endsWith(DONE))
})

test('a whole message with text and tool calls: content and tool_calls both, arguments as JSON text', () => {
  const chat = messageToChat({ id: 'msg_1', model: 'm', stop_reason: 'tool_use', usage: { input_tokens: 1, output_tokens: 2 },
    content: [{ type: 'text', text: 'Looking' }, { type: 'tool_use', id: 'toolu_a', name: 'get_weather', input: { city: 'Paris' } }] }) as any
  assert.equal(chat.choices[0].message.content, 'Looking')
  assert.deepEqual(chat.choices[0].message.tool_calls, [{ id: 'toolu_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }])
  assert.equal(chat.choices[0].finish_reason, 'tool_calls')
})

test('a request: roles, tool calls and their results, stop sequences, tool_choice and reasoning effort map over', () => {
  const out = chatToMessages({
    model: 'm', max_completion_tokens: 100, stop: 'END', user: 'u1', parallel_tool_calls: false,
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }], tool_choice: 'required',
    messages: [
      { role: 'system', content: 'sys' }, { role: 'developer', content: 'dev' },
      { role: 'user', content: [{ type: 'text', text: 'hi' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }, { id: 'c2', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Rome"}' } }] },
      { role: 'tool', tool_call_id: 'c1', content: 'sunny' }, { role: 'tool', tool_call_id: 'c2', content: 'rain' },
    ],
  }) as any
  assert.equal(out.system, 'sys\n\ndev')
  assert.deepEqual(out.stop_sequences, ['END'], 'stop is carried as stop_sequences')
  assert.deepEqual(out.tool_choice, { type: 'any', disable_parallel_tool_use: true })
  assert.equal(out.max_tokens, 100, 'max_completion_tokens is the max_tokens')
  assert.deepEqual(out.metadata, { user_id: 'u1' })
  assert.equal(out.messages[0].content[1].source.type, 'base64')
  assert.deepEqual(out.messages[1].content.map((b: any) => b.id), ['c1', 'c2'], 'one tool_use per call, none duplicated')
  assert.equal(out.messages.length, 3, 'consecutive tool results are one user turn')
  assert.deepEqual(out.messages[2].content.map((b: any) => b.tool_use_id), ['c1', 'c2'])
})

test('what cannot be expressed names its parameter', () => {
  const refused = (body: object): string => {
    try {
      chatToMessages({ model: 'm', messages: [{ role: 'user', content: 'hi' }], ...body })
    } catch (err) {
      assert.ok(err instanceof FormatError)
      return err.param
    }
    return 'accepted'
  }
  assert.equal(refused({ n: 2 }), 'n')
  assert.equal(refused({ logprobs: true }), 'logprobs')
  assert.equal(refused({ audio: { voice: 'x' } }), 'audio')
  assert.equal(refused({ response_format: { type: 'json_schema' } }), 'response_format')
  assert.equal(refused({ n: 1, logprobs: false }), 'accepted')
  assert.equal(refused({ messages: [{ role: 'assistant', tool_calls: [{ id: 'x', type: 'function', function: { name: 'f', arguments: '{bad' } }] }] }), 'messages[0].tool_calls[0].function.arguments')
})

test('responses: stateless input items map to turns; previous_response_id and reasoning items are handled as documented', () => {
  const out = responsesToMessages({
    model: 'm', instructions: 'be brief', tools: [{ type: 'function', name: 'shell', parameters: { type: 'object' } }, { type: 'web_search' }],
    input: [
      { role: 'user', content: [{ type: 'input_text', text: 'list files' }] },
      { type: 'reasoning', id: 'rs_1', encrypted_content: 'xx' },
      { type: 'function_call', call_id: 'call_1', name: 'shell', arguments: '{"cmd":"ls"}' },
      { type: 'function_call_output', call_id: 'call_1', output: 'a b' },
    ],
  }) as any
  assert.equal(out.system, 'be brief')
  assert.deepEqual(out.tools.map((t: any) => t.name), ['shell'], 'only function tools are offered')
  assert.deepEqual(out.messages.map((m: any) => m.role), ['user', 'assistant', 'user'])
  assert.equal(out.messages[2].content[0].tool_use_id, 'call_1')
  assert.throws(() => responsesToMessages({ model: 'm', input: 'x', previous_response_id: 'resp_1' }), (err: unknown) => err instanceof FormatError && err.param === 'previous_response_id')
})

test('responses stream: events in the API order, function_call_arguments deltas before their done, sequence numbers rising', () => {
  const stream = new ResponsesStream('msg_1', 'm')
  const text = toolEvents.map((e) => stream.event(e)).join('')
  const events = text.split('\n\n').filter(Boolean).map((block) => JSON.parse(block.split('\n')[1].slice(6)))
  const types = events.map((e) => e.type)
  assert.equal(types[0], 'response.created')
  assert.equal(types[1], 'response.in_progress')
  assert.equal(types.at(-1), 'response.completed')
  assert.ok(types.indexOf('response.output_text.done') < types.indexOf('response.function_call_arguments.delta'))
  const deltas = events.filter((e) => e.type === 'response.function_call_arguments.delta' && e.item_id === 'fc_toolu_a').map((e) => e.delta)
  assert.deepEqual(deltas, ['{"city":', ' "Paris"}'])
  assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i))
  const completed = events.at(-1)
  assert.deepEqual(completed.response.output.map((o: any) => o.type), ['message', 'function_call', 'function_call'])
  assert.equal(completed.response.usage.input_tokens_details.cached_tokens, 90)
})

test('a text chunk is the same JSON whether built whole or from its pre-serialised parts', () => {
  const stream = new ChatStream('msg_9', 'model "quoted"', false)
  const [first, chunk] = chunks(stream.text('he said "hi"\n'))
  assert.equal(first.choices[0].delta.role, 'assistant')
  assert.deepEqual(chunk, { id: 'chatcmpl-msg_9', object: 'chat.completion.chunk', created: chunk.created, model: 'model "quoted"',
    choices: [{ index: 0, delta: { content: 'he said "hi"\n' }, logprobs: null, finish_reason: null }] })
})

test('thinking only where Messages takes it: not beside a forced tool nor after an assistant tool call without thinking; sampling clamped or left out', () => {
  const plain = chatToMessages({ model: 'm', reasoning_effort: 'high', temperature: 1.5, top_p: 0.5, messages: [{ role: 'user', content: 'hi' }] }) as any
  assert.deepEqual(plain.thinking, { type: 'enabled', budget_tokens: 24576 })
  assert.ok(plain.max_tokens > 24576, 'max_tokens leaves room beyond the thinking budget')
  assert.equal(plain.temperature, undefined, 'no temperature beside thinking')
  assert.equal(plain.top_p, undefined)
  const loop = chatToMessages({ model: 'm', reasoning_effort: 'low', messages: [
    { role: 'user', content: 'go' }, { role: 'assistant', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
    { role: 'tool', tool_call_id: 'c1', content: 'done' }] }) as any
  assert.equal(loop.thinking, undefined, 'a tool loop whose assistant turns carry no thinking cannot turn it on')
  const forced = chatToMessages({ model: 'm', reasoning_effort: 'low', tool_choice: 'required', tools: [{ type: 'function', function: { name: 'f' } }], messages: [{ role: 'user', content: 'go' }] }) as any
  assert.equal(forced.thinking, undefined)
  const hot = chatToMessages({ model: 'm', temperature: 1.7, messages: [{ role: 'user', content: 'hi' }] }) as any
  assert.equal(hot.temperature, 1, 'temperature clamped to what Messages takes')
  const codex = responsesToMessages({ model: 'm', reasoning: { effort: 'medium' }, tools: [{ type: 'function', name: 'shell' }], input: [
    { role: 'user', content: 'ls' }, { type: 'function_call', call_id: 'k', name: 'shell', arguments: '{}' }, { type: 'function_call_output', call_id: 'k', output: 'a' }] }) as any
  assert.equal(codex.thinking, undefined, 'Codex\'s tool loop with reasoning on is served without thinking rather than refused')
})
