/**
 * The client's tools through the REAL Claude Code CLI (installed as a dev dependency), driven by ClaudeToolBridge
 * directly, against a scripted fake Anthropic API on 127.0.0.1 (ANTHROPIC_BASE_URL; the preset's quiet variables keep
 * the CLI off the network). The model is offered the client's tools and nothing else, under their own names; its call
 * comes out with a `toolu_` id of ours; the CLI waits, parked, until the result is resolved; then the model's answer.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { OrchestratorError } from '../src/errors.ts'
import { CLAUDE_BRIDGE_ENV, claudeBridgeArgs } from '../workers/sessions/bridge/claude-mcp.ts'
import { ClaudeToolBridge, type ClaudeBridgeOptions } from '../workers/sessions/bridge/claude-tools.ts'
import type { ClientTool, Step } from '../workers/sessions/bridge/types.ts'
import { assertAliveWithoutText, bridgeAccount, isAlive } from './helpers/bridge-account.ts'
import { startFakeClaudeModel, systemText, toolResults, type ModelCall } from './helpers/fake-claude-tool-model.ts'

const WEATHER: ClientTool = {
  name: 'get_weather',
  description: 'The current weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
}
// longer than the 2048 characters Claude Code keeps of an MCP tool's description
const WRITE_DESCRIPTION = `Writes a file on the client. ${'Mind the path. '.repeat(200)}END-OF-WRITE-DESCRIPTION`
const WRITE: ClientTool = {
  name: 'Write',
  description: WRITE_DESCRIPTION,
  input_schema: { type: 'object', properties: { file_path: { type: 'string' }, content: { type: 'string' } }, required: ['file_path', 'content'] },
}
// a valid 1×1 PNG (the CLI reads an image's header and drops one it cannot read)
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='

async function collect(run: (onText: (d: string) => void) => Promise<Step>): Promise<{ step: Step; text: string }> {
  const text: string[] = []
  const step = await run((d) => text.push(d))
  return { step, text: text.join('') }
}

function callsOf(step: Step) {
  assert.equal(step.kind, 'tool_use', `expected a tool_use step, got ${JSON.stringify(step)}`)
  return step.kind === 'tool_use' ? step.calls : []
}

async function gone(pid: number | undefined, what: string): Promise<void> {
  assert.ok(pid !== undefined)
  for (let i = 0; i < 50 && isAlive(pid); i++) await sleep(100)
  assert.equal(isAlive(pid), false, `${what}: process ${pid} survived`)
}

test('Claude Code bridge: the client\'s tools through the real claude CLI', { timeout: 180_000 }, async (t) => {
  const model = await startFakeClaudeModel(() => ({ text: ['unused'] }))
  t.after(() => model.close())
  process.env.AGYC_TEST_BRIDGE_CLAUDE_KEY = 'key-claude'
  const apiKey = { fromEnv: 'AGYC_TEST_BRIDGE_CLAUDE_KEY' }
  const account = bridgeAccount(t, { kind: 'claude-code', baseUrl: model.url, apiKey, model: 'claude-fake-1', killGraceMs: 500 }, {
    ANTHROPIC_BASE_URL: model.url, ANTHROPIC_API_KEY: apiKey, CLAUDE_CODE_MAX_RETRIES: '0', ...CLAUDE_BRIDGE_ENV,
  })
  t.after(async () => {
    for (const pid of account.pids) await gone(pid, 'after the tests')
  })
  const spawn = () => account.launcher.spawn(claudeBridgeArgs({ model: 'claude-fake-1' }), 'claude-code')
  const opened: ClaudeToolBridge[] = []
  // a failed subtest leaves its bridge open: closed here, before the no-orphan check
  t.after(() => Promise.all(opened.map((b) => b.close())))
  const open = async (tools: ClientTool[], extra: Partial<ClaudeBridgeOptions> = {}, child = spawn()) => {
    const bridge = await ClaudeToolBridge.open(child, { tools, toolResultTimeoutMs: 30_000, startTimeoutMs: 30_000, ...extra })
    opened.push(bridge)
    return bridge
  }
  const timings: Record<string, number> = {}
  t.after(() => t.diagnostic(`timings ${JSON.stringify(timings)}`))

  await t.test('the model is offered the client\'s tools and nothing else; the call waits for the client\'s result', async () => {
    model.script = (call) => toolResults(call).length > 0 ? { text: ['It is ', 'sunny.'] } : { text: ['Let me check.'], calls: [{ name: 'get_weather', input: { city: 'Paris' } }] }
    const before = model.calls.length
    const t0 = performance.now()
    const bridge = await open([WEATHER, WRITE], { system: 'You are the client\'s agent. SYSTEM-MARK-7f3a' })
    const first = await collect((onText) => bridge.start({ text: 'What is the weather in Paris?' }, onText))
    timings.coldFirstStepMs = Math.round(performance.now() - t0)
    const [call] = callsOf(first.step)
    assert.equal(callsOf(first.step).length, 1)
    assert.match(call.id, /^toolu_01[0-9A-Za-z]{22}$/, 'an Anthropic-shaped id of ours')
    assert.equal(call.name, 'get_weather', 'the client\'s name, not mcp__client__get_weather')
    assert.deepEqual(call.input, { city: 'Paris' })
    assert.equal(first.text, 'Let me check.', 'the text before the call streams in the same step')
    assert.deepEqual(bridge.pending, [call.id])
    assert.ok(first.step.kind === 'tool_use' && first.step.usage && first.step.usage.input_tokens === 100, 'the step carries the model call\'s usage')

    const asked = model.calls[before]
    assert.deepEqual(asked.body.tools.map((t: { name: string }) => t.name).sort(), ['Write', 'get_weather'], 'only the client\'s tools, under their own names')
    const weather = asked.body.tools.find((t: { name: string }) => t.name === 'get_weather')
    assert.equal(weather.description, WEATHER.description)
    assert.deepEqual(weather.input_schema, WEATHER.input_schema)
    const write = asked.body.tools.find((t: { name: string }) => t.name === 'Write')
    assert.ok(write.description.length < WRITE_DESCRIPTION.length && !write.description.includes('END-OF-WRITE-DESCRIPTION'), 'the CLI cuts a long MCP description')
    assert.match(systemText(asked), /SYSTEM-MARK-7f3a/, 'the client\'s system prompt')
    assert.match(systemText(asked), /END-OF-WRITE-DESCRIPTION/, 'the full description of a cut tool reaches the model through the system prompt')
    assert.doesNotMatch(systemText(asked), /You are an interactive agent that helps users with software engineering tasks/, 'Claude Code\'s own prompt is replaced')

    // parked: the CLI neither answers the call itself nor asks the model again
    await sleep(500)
    assert.equal(model.calls.length, before + 1, 'no model call while the tool call is pending')
    assert.ok(isAlive(bridge.pid!), 'the CLI stays alive, parked on the call')
    timings.parkedRssMB = Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${bridge.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024)
    assert.equal(bridge.resolve('toolu_01unknownunknownunknown', { content: 'x' }), false, 'an unknown id is refused')

    const t1 = performance.now()
    assert.equal(bridge.resolve(call.id, { content: '22°C and sunny' }), true)
    let firstDelta = 0
    const second = await collect((onText) => bridge.next((d) => { firstDelta ||= performance.now(); onText(d) }))
    timings.continuationFirstTextMs = Math.round(firstDelta - t1)
    timings.continuationStepMs = Math.round(performance.now() - t1)
    assert.deepEqual(second.step.kind === 'end' && second.step.stopReason, 'end_turn')
    assert.equal(second.text, 'It is sunny.')
    assert.deepEqual(bridge.pending, [])

    const followUp = model.calls[before + 1]
    const [result] = toolResults(followUp)
    assert.match(result.tool_use_id, /^toolu_fake_/, 'the CLI answers the model\'s own id; ours stays with the client')
    assert.deepEqual(result.content, [{ type: 'text', text: '22°C and sunny' }], 'the client\'s result reached the model')

    // the same process takes the conversation's next user turn, with its history
    model.script = () => ({ text: ['Again: sunny.'] })
    const t2 = performance.now()
    const third = await collect((onText) => bridge.start({ text: 'And tomorrow?' }, onText))
    timings.nextTurnMs = Math.round(performance.now() - t2)
    assert.equal(third.text, 'Again: sunny.')
    const history = model.calls.at(-1)!.body.messages
    assert.ok(history.length >= 4, 'the next turn carries the earlier ones')
    const pid = bridge.pid
    await bridge.close()
    await gone(pid, 'close()')
  })

  await t.test('several calls in one message: one step, answered in any order, text and images and errors back to the model', async () => {
    model.script = (call) => toolResults(call).length > 0 ? { text: ['Done.'] } : {
      calls: [
        { name: 'get_weather', input: { city: 'Paris' } },
        { name: 'get_weather', input: { city: 'Oslo' } },
        { name: 'Write', input: { file_path: 'out.txt', content: 'hi' } },
      ],
    }
    const bridge = await open([WEATHER, WRITE])
    const first = await collect((onText) => bridge.start({ text: 'Weather in Paris and Oslo, then write it down.' }, onText))
    const calls = callsOf(first.step)
    assert.deepEqual(calls.map((c) => [c.name, c.input]), [
      ['get_weather', { city: 'Paris' }], ['get_weather', { city: 'Oslo' }], ['Write', { file_path: 'out.txt', content: 'hi' }],
    ], 'all three, in the model\'s order')
    assert.equal(new Set(calls.map((c) => c.id)).size, 3)
    assert.deepEqual([...bridge.pending].sort(), calls.map((c) => c.id).sort())

    // answered last to first; the CLI goes on only once all are in
    const before = model.calls.length
    assert.ok(bridge.resolve(calls[2].id, { content: 'permission denied', is_error: true }))
    assert.ok(bridge.resolve(calls[1].id, { content: [{ type: 'text', text: 'Oslo: snow' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } }] }))
    await sleep(300)
    assert.equal(model.calls.length, before, 'no model call while one call is still pending')
    assert.ok(bridge.resolve(calls[0].id, { content: 'Paris: sun' }))
    const second = await collect((onText) => bridge.next(onText))
    assert.equal(second.text, 'Done.')

    // in the order the calls finished (the CLI runs read-only tools at once), under the model's ids
    const results = new Map(toolResults(model.calls.at(-1)!).map((r) => [r.tool_use_id, r]))
    assert.equal(results.size, 3)
    const [paris, oslo, write] = model.calls.at(-2)!.toolUseIds.map((id) => results.get(id)!)
    assert.deepEqual(paris.content, [{ type: 'text', text: 'Paris: sun' }])
    assert.deepEqual(oslo.content, [{ type: 'text', text: 'Oslo: snow' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } }])
    assert.equal(write.is_error, true)
    assert.match(JSON.stringify(write.content), /permission denied/)
    await bridge.close()
  })

  await t.test('a call past its deadline gets an error result, and the bridge ends with its process', async () => {
    model.script = (call) => toolResults(call).length > 0 ? { text: ['too late'] } : { calls: [{ name: 'get_weather', input: { city: 'Rome' } }] }
    const closed: string[] = []
    const bridge = await open([WEATHER], { toolResultTimeoutMs: 800, onClosed: (reason) => closed.push(reason) })
    const [call] = callsOf((await collect((onText) => bridge.start({ text: 'Rome?' }, onText))).step)
    const pid = bridge.pid
    await sleep(1_500)
    assert.deepEqual(closed, [`no result for ${call.id} within 800 ms`])
    assert.deepEqual(bridge.pending, [])
    assert.equal(bridge.resolve(call.id, { content: 'late' }), false, 'an expired id is refused: the conversation is served fresh')
    await assert.rejects(bridge.next(() => {}), (err: OrchestratorError) => err.code === 'AGYC_CANCELLED')
    await gone(pid, 'deadline')
  })

  await t.test('closing while the model answers stops the CLI: the start is rejected, the model call abandoned, no process left', async () => {
    model.script = () => ({ text: ['never seen'], delayMs: 20_000 })
    const bridge = await open([WEATHER])
    const before = model.calls.length
    const started = bridge.start({ text: 'slow' }, () => {}).then(() => undefined, (err: unknown) => err)
    for (let i = 0; i < 100 && model.calls.length === before; i++) await sleep(50)
    assert.equal(model.calls.length, before + 1, 'the model was asked')
    const pid = bridge.pid
    await bridge.close('the client went away')
    assert.equal((await started as OrchestratorError)?.code, 'AGYC_CANCELLED')
    await gone(pid, 'close() mid-answer')
    for (let i = 0; i < 40 && model.abandoned.length === 0; i++) await sleep(50)
    assert.ok(model.abandoned.some((c: ModelCall) => c === model.calls[before]), 'the CLI hung up on the model call')
  })

  await t.test('closing while a call is pending ends the process', async () => {
    model.script = (call) => toolResults(call).length > 0 ? { text: ['x'] } : { calls: [{ name: 'get_weather', input: { city: 'Lima' } }] }
    const bridge = await open([WEATHER])
    const [call] = callsOf((await collect((onText) => bridge.start({ text: 'Lima?' }, onText))).step)
    const pid = bridge.pid
    await bridge.close()
    assert.deepEqual(bridge.pending, [])
    assert.equal(bridge.resolve(call.id, { content: 'x' }), false)
    await gone(pid, 'close() while pending')
  })

  await t.test('an API error ends the turn with its code; the conversation takes the next turn', async () => {
    model.script = () => ({ error: { status: 429, type: 'rate_limit_error', message: 'fake rate limit' } })
    const bridge = await open([WEATHER])
    await assert.rejects(bridge.start({ text: 'hi' }, () => {}), (err: OrchestratorError) => err.code === 'AGYC_UPSTREAM_RATE_LIMITED')
    model.script = () => ({ text: ['Back.'] })
    const again = await collect((onText) => bridge.start({ text: 'hi again' }, onText))
    assert.equal(again.text, 'Back.')
    await bridge.close()
  })

  await t.test('the CLI dying while a call is pending fails the conversation and reports it', async () => {
    model.script = (call) => toolResults(call).length > 0 ? { text: ['x'] } : { calls: [{ name: 'get_weather', input: { city: 'Kyiv' } }] }
    const closed: string[] = []
    const bridge = await open([WEATHER], { onClosed: (reason) => closed.push(reason) })
    const [call] = callsOf((await collect((onText) => bridge.start({ text: 'Kyiv?' }, onText))).step)
    process.kill(bridge.pid!, 'SIGKILL')
    await assert.rejects(bridge.next(() => {}), (err: OrchestratorError) => err.code === 'AGYC_UPSTREAM_FAILED' && /SIGKILL/.test(err.message))
    assert.equal(closed.length, 1)
    assert.match(closed[0], /SIGKILL/)
    assert.equal(bridge.resolve(call.id, { content: 'x' }), false)
  })

  await t.test('Claude Code\'s own tools, as a Claude Code client declares them, reach the model whole', async () => {
    // what the real Claude Code sends as a client: its tools and system prompt, captured from a plain run
    model.script = () => ({ text: ['ok'] })
    const client = account.launcher.spawn(['-p', '--output-format', 'stream-json', '--verbose', '--model', 'claude-fake-1', '--', 'hello'], 'claude-code')
    client.proc.stdin.end()
    await client.closed
    const declared = model.calls.at(-1)!.body
    const tools: ClientTool[] = declared.tools.map((t: ClientTool) => ({ name: t.name, description: t.description, input_schema: t.input_schema }))
    assert.ok(tools.length >= 10 && tools.some((t) => (t.description ?? '').length > 2048), `a realistic set: ${tools.length} tools, some with long descriptions`)
    const system = systemText(model.calls.at(-1)!)

    model.script = () => ({ text: ['Understood.'] })
    const bridge = await open(tools, { system })
    await collect((onText) => bridge.start({ text: 'hello' }, onText))
    const asked = model.calls.at(-1)!.body
    const offered = new Map<string, ClientTool>(asked.tools.map((t: ClientTool) => [t.name, t]))
    assert.deepEqual([...offered.keys()].sort(), tools.map((t) => t.name).sort(), 'every tool, under its own name, nothing else')
    for (const tool of tools) assert.deepEqual(offered.get(tool.name)!.input_schema, tool.input_schema, `${tool.name}: the schema as declared`)
    const bridgedSystem = systemText(model.calls.at(-1)!)
    for (const tool of tools.filter((t) => (t.description ?? '').length > 2048)) {
      assert.ok(bridgedSystem.includes(tool.description!), `${tool.name}: its whole description reaches the model`)
    }
    await bridge.close()
  })

  await t.test('a CLI that cannot start fails the open with its own words, and leaves no process', async () => {
    const child = account.launcher.spawn(claudeBridgeArgs({ model: 'claude-fake-1', extraArgs: ['--no-such-flag'] }), 'claude-code')
    await assert.rejects(
      ClaudeToolBridge.open(child, { tools: [WEATHER], toolResultTimeoutMs: 30_000, startTimeoutMs: 30_000 }),
      (err: OrchestratorError) => err.code === 'AGYC_UPSTREAM_FAILED' && /no-such-flag/.test(err.message),
    )
    await gone(child.pid, 'a failed open')
  })

  await t.test('a process started ahead binds to its conversation in a fraction of a cold start; images reach the model', async () => {
    model.script = () => ({ text: ['A pixel.'] })
    const child = spawn()
    await sleep(3_000) // the CLI boots while nobody waits
    const t0 = performance.now()
    const bridge = await open([WEATHER], {}, child)
    const done = await collect((onText) => bridge.start({ text: 'What is this?', images: [{ media_type: 'image/png', data: PNG }] }, onText))
    timings.prewarmedFirstStepMs = Math.round(performance.now() - t0)
    assert.equal(done.text, 'A pixel.')
    const content = model.calls.at(-1)!.body.messages.at(-1).content
    assert.ok(content.some((b: { type: string }) => b.type === 'image'), 'the image went to the model')
    await bridge.close()
  })

  await t.test('a step without text still says the CLI is alive (what restarts the session\'s silence timer)', async () => {
    model.script = () => ({ calls: [{ name: 'get_weather', input: { city: 'Oslo' } }] })
    await assertAliveWithoutText(await open([WEATHER]))
  })
})
