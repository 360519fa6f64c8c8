/**
 * The worker's registry of bridged conversations (workers/sessions/bridge/conversations.ts) against a scripted
 * ToolBridge: which request continues which conversation, what is served fresh, and when the main thread hears that
 * parked calls ended (`unparked`). The real CLIs behind the same interface: test/bridge.presets.test.ts.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { OrchestratorError } from '../src/errors.ts'
import type { FromWorker } from '../src/protocol/messages.ts'
import { BridgeConversations, type BridgeOpenOptions } from '../workers/sessions/bridge/conversations.ts'
import { mintToolUseId, type AliveSink, type Prompt, type Step, type TextSink, type ToolBridge, type ToolResult } from '../workers/sessions/bridge/types.ts'
import type { SessionOutput, SessionRequest } from '../workers/sessions/types.ts'

/** a bridge whose steps the test scripts: `calls` cities make a tool_use step, none an end step */
class ScriptedBridge implements ToolBridge {
  readonly options: BridgeOpenOptions
  readonly prompts: Prompt[] = []
  readonly results = new Map<string, ToolResult>()
  pending: string[] = []
  closed: string | undefined
  /**
   * the next step: cities to call get_weather for, 'hang' (never answers), or `{ aliveMs }`: only signs of life, no
   * text (a model thinking, or streaming a tool call's input), every 25 ms for that long, then an end step
   */
  script: () => string[] | 'hang' | { aliveMs: number } = () => []

  constructor(options: BridgeOpenOptions) {
    this.options = options
  }

  start(prompt: Prompt, onText: TextSink, onAlive?: AliveSink): Promise<Step> {
    this.prompts.push(prompt)
    return this.#step(onText, onAlive)
  }

  next(onText: TextSink, onAlive?: AliveSink): Promise<Step> {
    return this.#step(onText, onAlive)
  }

  resolve(id: string, result: ToolResult): boolean {
    if (this.closed || !this.pending.includes(id)) return false
    this.pending = this.pending.filter((p) => p !== id)
    this.results.set(id, result)
    return true
  }

  async close(reason = 'closed'): Promise<void> {
    if (this.closed) return
    this.closed = reason
    this.pending = []
    this.options.onClosed(reason)
  }

  #step(onText: TextSink, onAlive: AliveSink | undefined): Promise<Step> {
    const cities = this.script()
    if (cities === 'hang') return new Promise(() => {})
    if (!Array.isArray(cities)) {
      return new Promise((resolve) => {
        const until = Date.now() + cities.aliveMs
        const beat = setInterval(() => {
          if (Date.now() < until) return onAlive?.()
          clearInterval(beat)
          onText('Thought it through.')
          resolve({ kind: 'end', stopReason: 'end_turn' })
        }, 25)
      })
    }
    onText('Checking.')
    if (cities.length === 0) return Promise.resolve({ kind: 'end', stopReason: 'end_turn' })
    const calls = cities.map((city) => ({ id: mintToolUseId(), name: 'get_weather', input: { city } }))
    this.pending = calls.map((c) => c.id)
    return Promise.resolve({ kind: 'tool_use', calls })
  }
}

const WEATHER = { name: 'get_weather', input_schema: { type: 'object' } }

function setup(idleTimeoutMs = 60_000) {
  const opened: ScriptedBridge[] = []
  const events: FromWorker[] = []
  let script: ScriptedBridge['script'] = () => ['Paris']
  const conversations = new BridgeConversations({
    what: 'cli',
    systemApart: false,
    async open(options) {
      const bridge = new ScriptedBridge(options)
      bridge.script = script
      opened.push(bridge)
      return bridge
    },
  }, { toolResultTimeoutMs: 60_000, idleTimeoutMs, emit: (e) => events.push(e) })
  const text: string[] = []
  const out: SessionOutput = { text: (d) => { text.push(d); return true }, raw: () => true, writable: true, drained: async () => {} }
  const run = (request: Record<string, unknown>, signal = new AbortController().signal) =>
    conversations.run({ request: { model: 'm', tools: [WEATHER], ...request }, signal } as unknown as SessionRequest, out)
  const unparked = () => events.flatMap((e) => (e.kind === 'unparked' ? e.ids : []))
  return { conversations, opened, run, unparked, text, setScript: (s: ScriptedBridge['script']) => { script = s } }
}

const user = (content: unknown) => ({ role: 'user', content })
type ToolUse = { type: 'tool_use'; id: string; name: string; input: unknown }
const uses = (content: readonly object[]): ToolUse[] => content.filter((b): b is ToolUse => (b as { type?: string }).type === 'tool_use')
const results = (ids: string[], text = 'sunny') => user(ids.map((id) => ({ type: 'tool_result', tool_use_id: id, content: text })))

test('a tool call parks the conversation; the request answering exactly its calls continues it', async () => {
  const { conversations, opened, run, unparked, text } = setup()
  const messages = [user('Weather in Paris?')]
  const first = await run({ messages })
  assert.equal(first.stopReason, 'tool_use')
  const [use] = uses(first.content)
  assert.deepEqual(first.parked, [use.id])
  assert.deepEqual(first.content[0], { type: 'text', text: 'Checking.' }, 'the text streamed before the call, then the call')
  assert.deepEqual(text, ['Checking.'])
  assert.equal(conversations.parked, 1)

  opened[0].script = () => []
  const second = await run({ messages: [...messages, { role: 'assistant', content: first.content }, results([use.id])] })
  assert.equal(opened.length, 1, 'no new conversation: the parked one continued')
  assert.deepEqual(opened[0].results.get(use.id), { content: [{ type: 'text', text: 'sunny' }], is_error: false })
  assert.equal(second.stopReason, 'end_turn')
  assert.equal(second.parked, undefined)
  assert.equal(opened[0].closed, 'the turn ended', 'a finished turn closes the conversation')
  assert.equal(conversations.parked, 0)
  assert.deepEqual(unparked(), [], 'continued calls are the main thread\'s to release, not unparked')
})

test('an unknown id, or part of the pending calls, is served fresh with the history as text', async () => {
  const { opened, run, unparked, setScript } = setup()
  setScript(() => ['Paris', 'Rome'])
  const first = await run({ messages: [user('Paris and Rome?')] })
  const ids = uses(first.content).map((u) => u.id)
  assert.equal(ids.length, 2)

  setScript(() => [])
  await run({ messages: [user('q'), { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01other', name: 'get_weather', input: {} }] }, results(['toolu_01other'])] })
  assert.equal(opened.length, 2, 'an unknown id opens a fresh conversation')
  assert.match(opened[1].prompts[0].text, /<tool_result id="toolu_01other">\nsunny\n<\/tool_result>/)
  assert.equal(opened[0].closed, undefined, 'the parked one is left alone')

  await run({ messages: [user('q'), { role: 'assistant', content: first.content }, results([ids[0]])] })
  assert.equal(opened.length, 3, 'a partial answer is served fresh')
  assert.equal(opened[0].closed, 'the client continued the conversation without it')
  assert.deepEqual(unparked().sort(), [...ids].sort(), 'the conversation\'s calls are unparked')
})

test('a conversation that ends while parked (deadline, CLI gone, shutdown) unparks its calls', async () => {
  const { conversations, opened, run, unparked } = setup()
  const a = await run({ messages: [user('one')] })
  const b = await run({ messages: [user('two')] })
  // the bridge's own deadline: it answered the CLI with an error and closed itself
  await opened[0].close('no result for the call within 60000 ms')
  assert.deepEqual(unparked(), a.parked)
  await conversations.closeAll('the account is stopping')
  assert.deepEqual(unparked(), [...a.parked!, ...b.parked!])
  assert.equal(opened[1].closed, 'the account is stopping')
  assert.equal(conversations.parked, 0)
})

test('a client that leaves while the CLI works stops its turn and closes the conversation', async () => {
  const { opened, run, setScript, unparked } = setup()
  setScript(() => 'hang')
  const controller = new AbortController()
  const running = run({ messages: [user('slow')] }, controller.signal)
  await new Promise((r) => setImmediate(r))
  controller.abort()
  await assert.rejects(running, (err: OrchestratorError) => err.code === 'AGYC_CANCELLED')
  assert.equal(opened[0].closed, 'the client went away')
  assert.deepEqual(unparked(), [], 'nothing was parked')
})

test('the silence timer restarts on any sign of life from the CLI, not only on text', async () => {
  const { opened, run, setScript } = setup(150)
  setScript(() => ({ aliveMs: 600 }))
  const answer = await run({ messages: [user('think hard')] })
  assert.deepEqual(answer.content, [{ type: 'text', text: 'Thought it through.' }], '600 ms without text, alive every 25 ms: no timeout at 150 ms')
  assert.equal(opened[0].closed, 'the turn ended')

  setScript(() => 'hang')
  const started = Date.now()
  await assert.rejects(run({ messages: [user('and now?')] }), (err: OrchestratorError) => err.code === 'AGYC_UPSTREAM_TIMEOUT')
  assert.ok(Date.now() - started >= 140, 'a CLI that says nothing at all still times out')
  assert.match(opened[1].closed ?? '', /silent on this request for 150 ms/)
})

test('tool_choice: "none" offers no tool, "any" and "tool" are refused as the client\'s 400', async () => {
  const { opened, run, setScript } = setup()
  setScript(() => [])
  await run({ messages: [user('hi')], tool_choice: { type: 'none' } })
  assert.deepEqual(opened[0].options.tools, [])
  for (const type of ['any', 'tool']) {
    await assert.rejects(run({ messages: [user('hi')], tool_choice: { type, name: 'get_weather' } }), (err: OrchestratorError) => err.code === 'AGYC_INVALID_REQUEST' && /^tool_choice: /.test(err.message))
  }
  await assert.rejects(run({ messages: [user('hi')], tools: [{ type: 'bash_20250124', name: 'bash' }] }), (err: OrchestratorError) => err.code === 'AGYC_INVALID_REQUEST' && /^tools\.0: /.test(err.message))
  assert.equal(opened.length, 1, 'a refused request opens nothing')
})
