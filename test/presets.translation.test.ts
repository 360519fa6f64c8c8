/** The presets' pure translation rules: a conversation as one prompt, and a CLI's words as our error codes. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { OrchestratorError } from '../src/errors.ts'
import { cliError, resetFromText } from '../workers/sessions/agent/cli-errors.ts'
import { codexError } from '../workers/sessions/codex.ts'
import { renderConversation, renderPrompt } from '../workers/sessions/agent/transcript.ts'
import { continuation } from '../workers/sessions/bridge/client-request.ts'

const refusal = (fn: () => unknown): OrchestratorError => {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof OrchestratorError)
    return err
  }
  assert.fail('expected a refusal')
}

test('a single user turn is the prompt as it is; system and earlier turns become a tagged transcript', () => {
  assert.deepEqual(renderPrompt({ messages: [{ role: 'user', content: '-p $(x)' }] }, 'cli'), { text: '-p $(x)' })
  const prompt = renderPrompt({
    system: [{ type: 'text', text: 'Be brief.' }],
    messages: [
      { role: 'user', content: 'q1' },
      { role: 'assistant', content: [{ type: 'thinking', thinking: '…' }, { type: 'text', text: 'a1' }] },
      { role: 'user', content: [{ type: 'text', text: 'q2' }, { type: 'text', text: 'more' }] },
      { role: 'system', content: 'per-turn note' },
    ],
  }, 'cli').text
  assert.equal(prompt, '<system>\nBe brief.\n\nper-turn note\n</system>\n\n<transcript>\n<user>\nq1\n</user>\n<assistant>\na1\n</assistant>\n</transcript>\n\nq2\nmore')
})

test('what a CLI cannot take is refused as the client\'s 400, naming the place', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ messages: [{ role: 'user', content: [{ type: 'text', text: 'x' }, { type: 'image', source: {} }] }] }, /^messages\.0\.content\.1: /],
    [{ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: [{ type: 'server_tool_use', id: 't', name: 'web_search', input: {} }] }, { role: 'user', content: 'y' }] }, /^messages\.1\.content\.0: /],
    [{ messages: [{ role: 'user', content: [{ type: 'document', source: {} }, { type: 'text', text: 'x' }] }] }, /^messages\.0\.content\.0: /],
    [{ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'prefill' }] }, /^messages\.1\.role: /],
    [{ messages: [{ role: 'user', content: '  ' }] }, /^messages\.0\.content: /],
    [{ messages: [{ role: 'user', content: 'x' }], tool_choice: { type: 'any' } }, /^tool_choice: /],
    [{ system: [{ type: 'document' }], messages: [{ role: 'user', content: 'x' }] }, /^system\.0: /],
  ]
  for (const [request, where] of cases) {
    const err = refusal(() => renderPrompt(request, 'cli'))
    assert.equal(err.code, 'AGYC_INVALID_REQUEST')
    assert.match(err.message, where)
  }
})

test('earlier tool calls and results become tagged text; images go apart to a CLI that takes them', () => {
  const png = { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' }
  const request = {
    system: 'Be brief.',
    messages: [
      { role: 'user', content: [{ type: 'text', text: 'Weather in Paris? See' }, { type: 'image', source: png }] },
      { role: 'assistant', content: [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', is_error: true, content: [{ type: 'text', text: 'timeout' }, { type: 'image', source: png }] }] },
    ],
  }
  const transcript = '<transcript>\n<user>\nWeather in Paris? See\n<image n="1"/>\n</user>\n<assistant>\nChecking.\n<tool_use id="toolu_1" name="get_weather">\n{"city":"Paris"}\n</tool_use>\n</assistant>\n</transcript>'
  const last = '<tool_result id="toolu_1" error>\ntimeout\n<image n="2"/>\n</tool_result>'
  const bridged = renderConversation(request, 'cli', { images: true, systemApart: true })
  assert.equal(bridged.prompt.text, `${transcript}\n\n${last}`, 'the system text is left to the CLI')
  assert.equal(bridged.system, 'Be brief.')
  assert.deepEqual(bridged.prompt.images, [{ media_type: 'image/png', data: png.data }, { media_type: 'image/png', data: png.data }])
  const textOnly = refusal(() => renderConversation(request, 'cli'))
  assert.match(textOnly.message, /^messages\.0\.content\.1: /, 'without images allowed (a text-only CLI) an image is refused')
  const refused = refusal(() => renderPrompt(request, 'cli', { noImages: 'cli did not offer image input' }))
  assert.equal(refused.message, 'messages.0.content.1: cli did not offer image input', 'the reason the CLI gave is the refusal')
  const agentMode = renderPrompt(request, 'cli', { images: true })
  assert.equal(agentMode.text, `<system>\nBe brief.\n</system>\n\n${transcript}\n\n${last}`, 'agent mode: the same prompt, the system text inside it')
  assert.deepEqual(agentMode.images, bridged.prompt.images, 'agent mode: the same images')
  const history = renderPrompt({ messages: [request.messages[1], { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'sunny' }] }] }, 'cli')
  assert.equal(history.text, '<transcript>\n<assistant>\nChecking.\n<tool_use id="toolu_1" name="get_weather">\n{"city":"Paris"}\n</tool_use>\n</assistant>\n</transcript>\n\n<tool_result id="toolu_1">\nsunny\n</tool_result>')
})

test('a continuation: the last user turn\'s results by id, with what the client added beside them on the last one', () => {
  const next = continuation({
    messages: [{ role: 'user', content: [
      { type: 'tool_result', tool_use_id: 'toolu_a', content: 'sunny' },
      { type: 'tool_result', tool_use_id: 'toolu_b', is_error: true, content: [{ type: 'text', text: 'EACCES' }] },
      { type: 'text', text: 'note from the user' },
    ] }],
  }, 'cli')
  assert.deepEqual(next?.ids, ['toolu_a', 'toolu_b'])
  assert.deepEqual(next?.results.get('toolu_a'), { content: [{ type: 'text', text: 'sunny' }], is_error: false })
  assert.deepEqual(next?.results.get('toolu_b'), { content: [{ type: 'text', text: 'EACCES' }, { type: 'text', text: 'note from the user' }], is_error: true })
  assert.equal(continuation({ messages: [{ role: 'user', content: 'hi' }] }, 'cli'), undefined)
  const err = refusal(() => continuation({ messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: [{ type: 'document', source: {} }] }] }] }, 'cli'))
  assert.equal(err.code, 'AGYC_INVALID_REQUEST')
  assert.match(err.message, /^messages\.0\.content\.0\.content\.0: /)
})

test('reset times are read in the forms the CLIs print them', () => {
  const now = new Date('2026-11-25T14:00:00').getTime()
  assert.equal(resetFromText('fake 429\nSuggested retry after 42s.', now), 42)
  assert.equal(resetFromText('{"retryDelay": "17s"}', now), 17)
  assert.equal(resetFromText('try again in 2h 5m', now), 2 * 3600 + 5 * 60)
  assert.equal(resetFromText('Your limit resets in 3 hours', now), 3 * 3600)
  assert.equal(resetFromText('…or try again at 3:03 PM.', now), 63 * 60)
  assert.equal(resetFromText('…or try again at 1:30 PM.', now), 23.5 * 3600, 'a time already past today is tomorrow')
  assert.equal(resetFromText('try again at Nov 26th, 2026 2:00 PM.', now), 24 * 3600)
  assert.equal(resetFromText('5-hour limit reached ∙ resets 4pm', now), 2 * 3600)
  assert.equal(resetFromText(`Claude AI usage limit reached|${now / 1000 + 600}`, now), 600)
  assert.equal(resetFromText('API Error: Request rejected (429)', now), undefined)
})

test('a CLI\'s error becomes the code its status or words mean, with the reset as retry-after', () => {
  assert.equal(cliError('x', 'API Error: Request rejected (429) · slow down', 429).code, 'AGYC_UPSTREAM_RATE_LIMITED')
  assert.equal(cliError('x', 'Invalid API key · Please run /login').code, 'AGYC_UPSTREAM_AUTH')
  assert.equal(cliError('x', 'something odd', 500).code, 'AGYC_UPSTREAM_FAILED')
  assert.equal(cliError('x', 'Overloaded', 529).code, 'AGYC_UPSTREAM_OVERLOADED')
  assert.equal(cliError('x', 'quota exhausted, retry after 30s').retryAfterS, 30)
  const usage = codexError({ message: 'You’ve hit your usage limit. Try again in 10 minutes.', codexErrorInfo: 'usageLimitExceeded' })
  assert.equal(usage.code, 'AGYC_UPSTREAM_RATE_LIMITED')
  assert.equal(usage.retryAfterS, 600)
  assert.equal(codexError({ message: 'exceeded retry limit, last status: 401', codexErrorInfo: { responseTooManyFailedAttempts: { httpStatusCode: 401 } } }).code, 'AGYC_UPSTREAM_AUTH')
  assert.equal(codexError({ message: 'boom', codexErrorInfo: 'other' }).code, 'AGYC_UPSTREAM_FAILED')
})
