/**
 * The client's tools through the REAL Codex CLI (`codex app-server`, installed as a dev dependency), driven by
 * CodexToolBridge directly, against a scripted fake model on 127.0.0.1 (the account's config.toml points Codex there;
 * nothing reaches the internet). The model sees the client's tools and nothing else; its call comes out under the
 * client's name with a `toolu_` id; Codex waits, parked, until the result is resolved; then the model's answer.
 */
import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { CODEX_KEY_VAR } from '../src/config/presets.ts'
import { CodexAppServer } from '../workers/sessions/bridge/codex-app-server.ts'
import { CodexToolBridge } from '../workers/sessions/bridge/codex-tools.ts'
import type { ClientTool, Step, ToolBridge } from '../workers/sessions/bridge/types.ts'
import { assertAliveWithoutText, bridgeAccount, isAlive } from './helpers/bridge-account.ts'
import { offeredTools, startFakeToolModel, type ModelCall, type Reply } from './helpers/fake-tool-model.ts'

const WEATHER: ClientTool = {
  name: 'get_weather',
  description: 'The current weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
}
const WRITE: ClientTool = {
  name: 'Write',
  description: 'Writes a file on the client',
  input_schema: { type: 'object', properties: { file_path: { type: 'string' }, content: { type: 'string' } }, required: ['file_path', 'content'] },
}

/** the items Codex sent after the model's calls: every function_call_output, by call id */
function outputsOf(call: ModelCall): Map<string, unknown> {
  const items = (call.body?.input ?? []) as { type?: string; call_id?: string; output?: unknown }[]
  return new Map(items.filter((i) => i.type === 'function_call_output').map((i) => [i.call_id!, i.output]))
}

const hasOutputs = (call: ModelCall): boolean => outputsOf(call).size > 0

async function collect(run: (onText: (d: string) => void) => Promise<Step>): Promise<{ step: Step; text: string[] }> {
  const text: string[] = []
  const step = await run((d) => text.push(d))
  return { step, text }
}

test('Codex bridge: the client\'s tools through the real codex app-server', { timeout: 120_000 }, async (t) => {
  // the script is swapped per subtest; by default: call get_weather, then answer with the result
  const model = await startFakeToolModel(() => ({ text: ['unused'] }))
  t.after(() => model.close())
  process.env.AGYC_TEST_BRIDGE_CODEX_KEY = 'key-codex'
  const apiKey = { fromEnv: 'AGYC_TEST_BRIDGE_CODEX_KEY' }
  const account = bridgeAccount(t, { kind: 'codex', baseUrl: `${model.url}/v1`, apiKey, model: 'gpt-fake', killGraceMs: 500 }, { [CODEX_KEY_VAR]: apiKey })
  const cwd = join(account.stateDir, 'bridge')
  mkdirSync(cwd, { recursive: true })

  const t0 = performance.now()
  const server = await CodexAppServer.start(account.launcher, { startTimeoutMs: 30_000, maxLineBytes: 16 * 1024 * 1024 })
  const coldMs = performance.now() - t0
  t.after(async () => {
    await server.stop()
    for (const pid of account.pids) assert.equal(isAlive(pid), false, `codex process ${pid} survived stop()`)
  })
  const open = (tools: ClientTool[], extra: Partial<Parameters<typeof CodexToolBridge.open>[1]> = {}): Promise<CodexToolBridge> =>
    CodexToolBridge.open(server, { tools, cwd, toolResultTimeoutMs: 30_000, ...extra })
  const timings: Record<string, number> = { coldStartMs: Math.round(coldMs) }
  t.after(() => t.diagnostic(`timings ${JSON.stringify(timings)}`))

  await t.test('the model is offered the client\'s tools and nothing else; the call waits for the client\'s result', async () => {
    model.script = (call) => hasOutputs(call) ? { text: ['It is ', 'sunny.'] } : { text: ['Let me check.'], calls: [{ name: 'get_weather', args: { city: 'Paris' } }] }
    const before = model.calls.length
    const tOpen = performance.now()
    const bridge = await open([WEATHER, WRITE], { system: 'You are the client\'s agent. SYSTEM-MARK-7f3a' })
    const first = await collect((onText) => bridge.start({ text: 'What is the weather in Paris?' }, onText))
    timings.firstStepMs = Math.round(performance.now() - tOpen)
    assert.equal(first.step.kind, 'tool_use')
    assert.ok(first.step.kind === 'tool_use')
    assert.equal(first.step.calls.length, 1)
    const [call] = first.step.calls
    assert.match(call.id, /^toolu_01[0-9A-Za-z]{22}$/, 'an Anthropic-shaped id of ours')
    assert.equal(call.name, 'get_weather')
    assert.deepEqual(call.input, { city: 'Paris' })
    assert.equal(first.text.join(''), 'Let me check.', 'the text before the call streams in the same step')
    assert.deepEqual(bridge.pending, [call.id])

    const asked = model.calls.slice(before)
    assert.equal(asked.length, 1)
    assert.deepEqual(offeredTools(asked[0]).sort(), ['Write', 'get_weather'], 'only the client\'s tools, none of Codex\'s own')
    const weather = asked[0].body.tools.find((x: { name: string }) => x.name === 'get_weather')
    assert.deepEqual(weather.parameters, WEATHER.input_schema, 'the client\'s JSON schema as it was')
    assert.equal(weather.description, WEATHER.description)
    const instructions = JSON.stringify(asked[0].body.input)
    assert.ok(instructions.includes('SYSTEM-MARK-7f3a'), 'the client\'s system text reached the model')
    assert.ok(!instructions.includes('You are a coding agent running in the Codex CLI'), 'Codex\'s own instructions are replaced')

    // parked: Codex sends nothing more while the client has the call
    await new Promise((r) => setTimeout(r, 1_500))
    assert.equal(model.calls.length, before + 1, 'no model call while the tool call is pending')

    assert.equal(bridge.resolve('toolu_01unknownunknownunknown', { content: 'x' }), false, 'an unknown id is refused')
    const tResolve = performance.now()
    assert.equal(bridge.resolve(call.id, { content: [{ type: 'text', text: '22°C and sunny' }] }), true)
    assert.equal(bridge.resolve(call.id, { content: 'again' }), false, 'a call is answered once')
    const final = await collect((onText) => bridge.next(onText))
    timings.continuationMs = Math.round(performance.now() - tResolve)
    assert.deepEqual(final.step, { kind: 'end', stopReason: 'end_turn', usage: { input_tokens: 100, output_tokens: 10, cache_read_input_tokens: 0 }, model: 'gpt-fake' })
    assert.equal(final.text.join(''), 'It is sunny.')
    const outputs = outputsOf(model.calls.at(-1)!)
    assert.deepEqual([...outputs.values()], ['22°C and sunny'], 'the client\'s result is what the model got back')
    await bridge.close()
  })

  await t.test('two calls in one model response come out as one step, and go back together', async () => {
    model.script = (call) => hasOutputs(call)
      ? { text: ['Paris and Rome: both sunny.'] }
      : { calls: [{ name: 'get_weather', args: { city: 'Paris' } }, { name: 'get_weather', args: { city: 'Rome' } }] }
    const bridge = await open([WEATHER])
    const first = await collect((onText) => bridge.start({ text: 'Weather in Paris and Rome?' }, onText))
    assert.ok(first.step.kind === 'tool_use')
    assert.equal(first.step.calls.length, 2)
    assert.deepEqual(first.step.calls.map((c) => (c.input as { city: string }).city).sort(), ['Paris', 'Rome'])
    assert.notEqual(first.step.calls[0].id, first.step.calls[1].id)
    for (const c of first.step.calls) bridge.resolve(c.id, { content: `sunny in ${(c.input as { city: string }).city}` })
    const final = await collect((onText) => bridge.next(onText))
    assert.equal(final.step.kind, 'end')
    assert.equal(final.text.join(''), 'Paris and Rome: both sunny.')
    assert.deepEqual([...outputsOf(model.calls.at(-1)!).values()].sort(), ['sunny in Paris', 'sunny in Rome'])
    await bridge.close()
  })

  await t.test('an error result and an image reach the model; a second user turn continues the same thread', async () => {
    let turn = 0
    model.script = (call): Reply => {
      const text = JSON.stringify(call.body.input)
      if (text.includes('second question')) return { text: ['second answer'] }
      if (hasOutputs(call)) return { text: ['done'] }
      turn++
      return { calls: [{ name: 'Write', args: { file_path: '/tmp/x', content: 'hi' } }, { name: 'get_weather', args: { city: 'Oslo' } }] }
    }
    const bridge = await open([WEATHER, WRITE])
    const first = await collect((onText) => bridge.start({ text: 'first question' }, onText))
    assert.ok(first.step.kind === 'tool_use')
    const write = first.step.calls.find((c) => c.name === 'Write')!
    const weather = first.step.calls.find((c) => c.name === 'get_weather')!
    bridge.resolve(write.id, { content: 'EACCES: permission denied', is_error: true })
    const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='
    bridge.resolve(weather.id, { content: [{ type: 'text', text: 'a chart' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } }] })
    assert.equal((await bridge.next(() => {})).kind, 'end')
    const back = JSON.stringify([...outputsOf(model.calls.at(-1)!).values()])
    assert.ok(back.includes('EACCES: permission denied'), 'the error text reached the model')
    assert.ok(back.includes(png), `the image reached the model: ${back.slice(0, 300)}`)

    const second = await collect((onText) => bridge.start({ text: 'second question' }, onText))
    assert.equal(second.step.kind, 'end')
    assert.equal(second.text.join(''), 'second answer')
    assert.ok(JSON.stringify(model.calls.at(-1)!.body.input).includes('first question'), 'the thread kept the history')
    assert.equal(turn, 1)
    await bridge.close()
  })

  await t.test('a call past its deadline gets an error result, the bridge ends, and its id is dead', async () => {
    model.script = (call) => hasOutputs(call) ? { text: ['gave up'] } : { calls: [{ name: 'get_weather', args: { city: 'Lima' } }] }
    // what the bridge writes to Codex's stdin: the answer to item/tool/call must be there
    const written: string[] = []
    const stdin = server.child.proc.stdin
    const write = stdin.write.bind(stdin) as (chunk: string) => boolean
    stdin.write = ((chunk: string) => { written.push(String(chunk)); return write(chunk) }) as typeof stdin.write
    t.after(() => { stdin.write = write as typeof stdin.write })
    let closedWith: string | undefined
    const bridge = await open([WEATHER], { toolResultTimeoutMs: 400, onClosed: (reason) => { closedWith = reason } })
    const first = await bridge.start({ text: 'Lima?' }, () => {})
    assert.ok(first.kind === 'tool_use')
    await assert.rejects(bridge.next(() => {}), (err: { code?: string }) => err.code === 'AGYC_CANCELLED')
    assert.match(closedWith ?? '', /within 400 ms/)
    assert.equal(bridge.resolve(first.calls[0].id, { content: 'late' }), false, 'a late result never reaches the CLI')
    const answers = written.map((line) => JSON.parse(line)).filter((m) => m.result?.contentItems)
    assert.equal(answers.length, 1, 'Codex got exactly one answer for its call')
    assert.equal(answers[0].result.success, false)
    assert.match(answers[0].result.contentItems[0].text, /did not return a result for get_weather within 400 ms/)
    assert.ok(written.some((line) => line.includes('"turn/interrupt"')), 'the turn was interrupted after it')
    stdin.write = write as typeof stdin.write
    assert.ok(server.alive, 'the shared app-server lives on')
  })

  await t.test('closing a parked bridge frees Codex: the next conversation on the same server works', async () => {
    model.script = (call) => hasOutputs(call) ? { text: ['ok'] } : { calls: [{ name: 'get_weather', args: { city: 'Kyiv' } }] }
    const parked = await open([WEATHER])
    const step = await parked.start({ text: 'Kyiv?' }, () => {})
    assert.ok(step.kind === 'tool_use')
    await parked.close('the client went away')
    assert.deepEqual(parked.pending, [])
    await assert.rejects(parked.next(() => {}), (err: { code?: string }) => err.code === 'AGYC_CANCELLED')

    model.script = () => ({ text: ['fresh'] })
    const tFresh = performance.now()
    const fresh: ToolBridge = await open([WEATHER])
    const done = await collect((onText) => fresh.start({ text: 'hello' }, onText))
    timings.freshThreadTextOnlyMs = Math.round(performance.now() - tFresh)
    assert.equal(done.step.kind, 'end')
    assert.equal(done.text.join(''), 'fresh')
    await fresh.close()
  })
  await t.test('closing while the model is still answering stops the turn; the process serves the next conversation', async () => {
    model.script = () => ({ text: ['too late'], delayMs: 5_000 })
    const before = model.calls.length
    const bridge = await open([WEATHER])
    const step = assert.rejects(bridge.start({ text: 'slow one' }, () => {}), (err: { code?: string }) => err.code === 'AGYC_CANCELLED')
    while (model.calls.length === before) await new Promise((r) => setTimeout(r, 20))
    await bridge.close('the client disconnected')
    await step
    const deadline = Date.now() + 3_000
    while (model.abandoned.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    assert.equal(model.abandoned.length, 1, 'Codex hung up on the model call it no longer needs')
    model.script = () => ({ text: ['next'] })
    const next = await open([WEATHER])
    assert.equal((await next.start({ text: 'hello again' }, () => {})).kind, 'end')
    await next.close()
  })

  await t.test('a step without text still says the CLI is alive (what restarts the session\'s silence timer)', async () => {
    model.script = () => ({ calls: [{ name: 'get_weather', args: { city: 'Oslo' } }] })
    await assertAliveWithoutText(await open([WEATHER]))
  })
})
