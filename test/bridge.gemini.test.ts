/**
 * The client's tools through the REAL Gemini CLI (`gemini --acp`, installed as a dev dependency), driven by
 * GeminiToolBridge directly: our MCP server (official SDK, Streamable HTTP on 127.0.0.1) passed in `session/new`,
 * Gemini's built-ins excluded by the bridge folder's workspace settings, a scripted fake model on 127.0.0.1 (nothing
 * reaches the internet). The model sees `mcp_client_<tool>` and nothing else; its call comes out under the client's
 * name with a `toolu_` id; Gemini waits, parked, until the result is resolved.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { GeminiAcp } from '../workers/sessions/bridge/gemini-acp.ts'
import { ClientToolServer } from '../workers/sessions/bridge/gemini-mcp.ts'
import { prepareBridgeWorkspace } from '../workers/sessions/bridge/gemini-settings.ts'
import { GeminiToolBridge, MCP_SERVER_NAME } from '../workers/sessions/bridge/gemini-tools.ts'
import type { ClientTool, Step } from '../workers/sessions/bridge/types.ts'
import { assertAliveWithoutText, bridgeAccount, isAlive } from './helpers/bridge-account.ts'
import { offeredTools, startFakeToolModel, type ModelCall } from './helpers/fake-tool-model.ts'

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
/** a client tool whose name is one of Gemini's built-ins, which the exclusion list would drop */
const READ_FILE: ClientTool = { name: 'read_file', description: 'Reads a file on the client', input_schema: { type: 'object', properties: { path: { type: 'string' } } } }

/** the functionResponse parts Gemini sent after the model's calls */
function responsesOf(call: ModelCall): { name: string; response: unknown }[] {
  const contents = (call.body?.contents ?? []) as { parts?: { functionResponse?: { name: string; response: unknown } }[] }[]
  return contents.flatMap((c) => (c.parts ?? []).flatMap((p) => (p.functionResponse ? [p.functionResponse] : [])))
}
const answered = (call: ModelCall): number => responsesOf(call).length

async function eventually(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function collect(run: (onText: (d: string) => void) => Promise<Step>): Promise<{ step: Step; text: string[] }> {
  const text: string[] = []
  const step = await run((d) => text.push(d))
  return { step, text }
}

test('Gemini bridge: the client\'s tools through the real gemini --acp and an MCP server of ours', { timeout: 150_000 }, async (t) => {
  const model = await startFakeToolModel(() => ({ text: ['unused'] }))
  t.after(() => model.close())
  process.env.AGYC_TEST_BRIDGE_GEMINI_KEY = 'key-gemini'
  const apiKey = { fromEnv: 'AGYC_TEST_BRIDGE_GEMINI_KEY' }
  const account = bridgeAccount(t, { kind: 'gemini-cli', baseUrl: model.url, apiKey, model: 'gemini-fake', killGraceMs: 500 },
    { GOOGLE_GEMINI_BASE_URL: model.url, GEMINI_API_KEY: apiKey })
  const cwd = prepareBridgeWorkspace(account.stateDir, MCP_SERVER_NAME)

  const t0 = performance.now()
  const acp = await GeminiAcp.start(account.launcher, { model: 'gemini-fake', authMethod: 'gemini-api-key', startTimeoutMs: 60_000, maxLineBytes: 16 * 1024 * 1024 })
  const timings: Record<string, number> = { coldStartMs: Math.round(performance.now() - t0) }
  const tools = await ClientToolServer.start()
  timings.mcpServerStartMs = Math.round(performance.now() - t0) - timings.coldStartMs
  t.after(async () => {
    await acp.stop()
    await tools.stop()
    for (const pid of account.pids) assert.equal(isAlive(pid), false, `gemini process ${pid} survived stop()`)
  })
  t.after(() => t.diagnostic(`timings ${JSON.stringify(timings)}`))
  // everything Gemini prints on stdout: what it reports about each tool call
  let stdout = ''
  acp.child.proc.stdout.on('data', (d: Buffer) => { stdout += d })
  const open = (list: ClientTool[], extra: Partial<Parameters<typeof GeminiToolBridge.open>[2]> = {}): Promise<GeminiToolBridge> =>
    GeminiToolBridge.open(acp, tools, { tools: list, cwd, toolResultTimeoutMs: 30_000, ...extra })

  await t.test('the model is offered the client\'s tools and nothing else; the call waits for the client\'s result', async () => {
    model.script = (call) => answered(call) > 0 ? { text: ['It is ', 'sunny.'] } : { text: ['Let me check.'], calls: [{ name: 'mcp_client_get_weather', args: { city: 'Paris' } }] }
    const before = model.calls.length
    const tOpen = performance.now()
    const bridge = await open([WEATHER, WRITE])
    timings.sessionNewMs = Math.round(performance.now() - tOpen)
    const first = await collect((onText) => bridge.start({ text: 'What is the weather in Paris?' }, onText))
    timings.firstStepMs = Math.round(performance.now() - tOpen)
    assert.ok(first.step.kind === 'tool_use', `a tool_use step, got ${JSON.stringify(first.step)}`)
    assert.equal(first.step.calls.length, 1)
    const [call] = first.step.calls
    assert.match(call.id, /^toolu_01[0-9A-Za-z]{22}$/)
    assert.equal(call.name, 'get_weather', 'the client\'s name, not Gemini\'s mcp_client_get_weather')
    assert.deepEqual(call.input, { city: 'Paris' })
    assert.equal(first.text.join(''), 'Let me check.')
    assert.deepEqual(bridge.pending, [call.id])

    const asked = model.calls.slice(before)
    assert.equal(asked.length, 1)
    assert.deepEqual(offeredTools(asked[0]).sort(), ['mcp_client_Write', 'mcp_client_get_weather'], 'only the client\'s tools, none of Gemini\'s own')
    const declared = asked[0].body.tools[0].functionDeclarations.find((f: { name: string }) => f.name === 'mcp_client_get_weather')
    assert.match(declared.description, /The current weather in a city/)

    await new Promise((r) => setTimeout(r, 1_500))
    assert.equal(model.calls.length, before + 1, 'no model call while the tool call is pending')
    assert.equal(bridge.resolve('toolu_01unknownunknownunknown', { content: 'x' }), false)
    const tResolve = performance.now()
    assert.equal(bridge.resolve(call.id, { content: '22°C and sunny' }), true)
    const final = await collect((onText) => bridge.next(onText))
    timings.continuationMs = Math.round(performance.now() - tResolve)
    assert.equal(final.step.kind, 'end')
    assert.ok(final.step.kind === 'end' && final.step.model === 'gemini-fake')
    assert.equal(final.text.join(''), 'It is sunny.')
    assert.match(JSON.stringify(responsesOf(model.calls.at(-1)!)), /22°C and sunny/, 'the client\'s result is what the model got back')
    await bridge.close()
  })

  await t.test('a client tool named like a Gemini built-in is offered under another name and still called', async () => {
    model.script = (call) => answered(call) > 0 ? { text: ['read it'] } : { calls: [{ name: 'mcp_client_client_read_file', args: { path: 'a.txt' } }] }
    const before = model.calls.length
    const bridge = await open([READ_FILE])
    const step = await bridge.start({ text: 'read a.txt' }, () => {})
    assert.deepEqual(offeredTools(model.calls[before]), ['mcp_client_client_read_file'])
    assert.ok(step.kind === 'tool_use')
    assert.equal(step.calls[0].name, 'read_file')
    bridge.resolve(step.calls[0].id, { content: 'contents of a.txt' })
    assert.equal((await bridge.next(() => {})).kind, 'end')
    await bridge.close()
  })

  await t.test('two calls in one model response come one step each (Gemini runs them in turn)', async () => {
    model.script = (call) => answered(call) > 0
      ? { text: ['Both sunny.'] }
      : { calls: [{ name: 'mcp_client_get_weather', args: { city: 'Paris' } }, { name: 'mcp_client_get_weather', args: { city: 'Rome' } }] }
    const before = model.calls.length
    const bridge = await open([WEATHER])
    const first = await bridge.start({ text: 'Paris and Rome?' }, () => {})
    assert.ok(first.kind === 'tool_use')
    assert.deepEqual(first.calls.map((c) => c.input), [{ city: 'Paris' }])
    bridge.resolve(first.calls[0].id, { content: 'sunny in Paris' })
    const second = await bridge.next(() => {})
    assert.ok(second.kind === 'tool_use')
    assert.deepEqual(second.calls.map((c) => c.input), [{ city: 'Rome' }])
    assert.equal(model.calls.length, before + 1, 'the second call came from the same model response')
    bridge.resolve(second.calls[0].id, { content: 'sunny in Rome' })
    const final = await collect((onText) => bridge.next(onText))
    assert.equal(final.step.kind, 'end')
    assert.equal(final.text.join(''), 'Both sunny.')
    const back = JSON.stringify(responsesOf(model.calls.at(-1)!))
    assert.match(back, /sunny in Paris/)
    assert.match(back, /sunny in Rome/)
    await bridge.close()
  })

  await t.test('an error result and an image reach the model; a second user turn continues the same session', async () => {
    model.script = (call) => {
      const text = JSON.stringify(call.body.contents)
      if (text.includes('second question')) return { text: ['second answer'] }
      return answered(call) > 0 ? { text: ['done'] } : { calls: [{ name: 'mcp_client_Write', args: { file_path: '/x', content: 'hi' } }] }
    }
    const bridge = await open([WRITE])
    const first = await bridge.start({ text: 'first question' }, () => {})
    assert.ok(first.kind === 'tool_use')
    const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='
    bridge.resolve(first.calls[0].id, { content: [{ type: 'text', text: 'EACCES: permission denied' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } }], is_error: true })
    assert.equal((await bridge.next(() => {})).kind, 'end')
    const back = JSON.stringify(model.calls.at(-1)!.body.contents.slice(-2))
    assert.match(back, /EACCES: permission denied/)
    assert.match(back, /error/i, 'Gemini marks it as an error')

    const second = await collect((onText) => bridge.start({ text: 'second question' }, onText))
    assert.equal(second.step.kind, 'end')
    assert.equal(second.text.join(''), 'second answer')
    assert.match(JSON.stringify(model.calls.at(-1)!.body.contents), /first question/, 'the session kept the history')
    await bridge.close()
  })

  await t.test('an image result reaches the model', async () => {
    model.script = (call) => answered(call) > 0 ? { text: ['a red dot'] } : { calls: [{ name: 'mcp_client_get_weather', args: { city: 'Oslo' } }] }
    const bridge = await open([WEATHER])
    const first = await bridge.start({ text: 'radar for Oslo?' }, () => {})
    assert.ok(first.kind === 'tool_use')
    const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='
    bridge.resolve(first.calls[0].id, { content: [{ type: 'text', text: 'radar' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } }] })
    assert.equal((await bridge.next(() => {})).kind, 'end')
    assert.ok(JSON.stringify(model.calls.at(-1)!.body.contents).includes(png), 'the image data reached the model')
    await bridge.close()
  })

  await t.test('a call past its deadline gets an error result, the bridge ends, and its id is dead', async () => {
    model.script = (call) => answered(call) > 0 ? { text: ['gave up'] } : { calls: [{ name: 'mcp_client_get_weather', args: { city: 'Lima' } }] }
    let closedWith: string | undefined
    const bridge = await open([WEATHER], { toolResultTimeoutMs: 400, onClosed: (reason) => { closedWith = reason } })
    // what our MCP server writes back to Gemini
    let mcpOut = ''
    const handle = tools.handle.bind(tools)
    tools.handle = (req, res) => {
      const write = res.write.bind(res) as (chunk: unknown, ...rest: unknown[]) => boolean
      res.write = ((chunk: unknown, ...rest: unknown[]) => {
        mcpOut += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8')
        return write(chunk, ...rest)
      }) as typeof res.write
      return handle(req, res)
    }
    t.after(() => { tools.handle = handle })
    const mark = stdout.length
    const first = await bridge.start({ text: 'Lima?' }, () => {})
    assert.ok(first.kind === 'tool_use')
    await assert.rejects(bridge.next(() => {}), (err: { code?: string }) => err.code === 'AGYC_CANCELLED')
    assert.match(closedWith ?? '', /within 400 ms/)
    assert.equal(bridge.resolve(first.calls[0].id, { content: 'late' }), false)
    // the answer to Gemini's tools/call (our MCP server's SSE stream) carried the error result
    await eventually(() => mcpOut.includes('did not return a result for get_weather within 400 ms'))
    assert.match(mcpOut, /"isError":true/)
    // and Gemini stopped the turn (the cancel that follows may beat the result to its scheduler: "aborted")
    await eventually(() => /"stopReason":"cancelled"/.test(stdout.slice(mark)))
    assert.ok(acp.alive)
  })

  await t.test('closing a parked bridge frees the session; the next conversation on the same process works', async () => {
    model.script = (call) => answered(call) > 0 ? { text: ['ok'] } : { calls: [{ name: 'mcp_client_get_weather', args: { city: 'Kyiv' } }] }
    const parked = await open([WEATHER])
    const step = await parked.start({ text: 'Kyiv?' }, () => {})
    assert.ok(step.kind === 'tool_use')
    await parked.close('the client went away')
    assert.deepEqual(parked.pending, [])
    await assert.rejects(parked.next(() => {}), (err: { code?: string }) => err.code === 'AGYC_CANCELLED')

    model.script = () => ({ text: ['fresh'] })
    const tFresh = performance.now()
    const fresh = await open([WEATHER])
    const done = await collect((onText) => fresh.start({ text: 'hello' }, onText))
    timings.freshSessionTextOnlyMs = Math.round(performance.now() - tFresh)
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
    assert.equal(model.abandoned.length, 1, 'Gemini hung up on the model call it no longer needs')
    model.script = () => ({ text: ['next'] })
    const next = await open([WEATHER])
    assert.equal((await next.start({ text: 'hello again' }, () => {})).kind, 'end')
    await next.close()
  })

  await t.test('a step without text still says the CLI is alive (what restarts the session\'s silence timer)', async () => {
    model.script = () => ({ calls: [{ name: 'mcp_client_get_weather', args: { city: 'Oslo' } }] })
    await assertAliveWithoutText(await open([WEATHER]))
  })
})
