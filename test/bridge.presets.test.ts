/**
 * The tool bridge end to end: the official Anthropic SDK's tool loop (`get_weather`) through an orchestrator whose
 * accounts run the REAL Codex (`codex app-server`), Gemini CLI (`gemini --acp`) and Claude Code (`claude -p`), each
 * pointed at a scripted fake model on 127.0.0.1 (test/helpers/fake-tool-model.ts, fake-claude-tool-model.ts; nothing
 * reaches the internet). The model calls the client's tool; the client gets a `tool_use` block and
 * `stop_reason: "tool_use"` while the CLI waits, parked; the client's `tool_result` goes back to that CLI, which
 * continues. The orchestrator helper checks that no CLI process survives.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type Anthropic from '@anthropic-ai/sdk'
import { startFakeToolModel, type FakeToolModel } from './helpers/fake-tool-model.ts'
import { startFakeClaudeModel, toolResults, type FakeClaudeModel } from './helpers/fake-claude-tool-model.ts'
import { apiError, eventually, isAlive, start, textOf, type Started } from './helpers/orchestrator.ts'
import { WEATHER, answerToolUses, toolUses } from './helpers/tool-loop.ts'

process.env.AGYC_TEST_BRIDGE_KEY = 'key-bridge'
const apiKey = { fromEnv: 'AGYC_TEST_BRIDGE_KEY' }

type Kind = 'codex' | 'gemini-cli' | 'claude-code'
const KINDS: Kind[] = ['codex', 'gemini-cli', 'claude-code']
/** the model name routes a request to the preset's account */
const MODEL: Record<Kind, string> = { codex: 'gpt-fake', 'gemini-cli': 'gemini-fake', 'claude-code': 'claude-fake-1' }
const ACCOUNT: Record<Kind, string> = { codex: 'codex-a', 'gemini-cli': 'gemini-a', 'claude-code': 'claude-a' }

/** a model call as the scripts see it, whichever fake took it */
interface Call { provider: 'codex' | 'gemini' | 'claude'; body: any }
interface Reply { text?: string[]; calls?: { name: string; args: Record<string, unknown> }[]; delayMs?: number }

/** the two fakes: Codex and Gemini CLI share one (their paths differ), Claude Code has the Anthropic API's */
class Models {
  readonly tool: FakeToolModel
  readonly claude: FakeClaudeModel
  constructor(tool: FakeToolModel, claude: FakeClaudeModel) {
    this.tool = tool
    this.claude = claude
  }

  set script(fn: (call: Call) => Reply) {
    this.tool.script = (call) => fn(call)
    this.claude.script = (call) => {
      const reply = fn({ provider: 'claude', body: call.body })
      return { ...reply, calls: reply.calls?.map((c) => ({ name: c.name, input: c.args })) }
    }
  }

  calls(kind: Kind): Call[] {
    return kind === 'claude-code' ? this.claude.calls.map((c) => ({ provider: 'claude', body: c.body })) : this.tool.calls
  }

  abandoned(kind: Kind): number {
    return kind === 'claude-code' ? this.claude.abandoned.length : this.tool.abandoned.length
  }

  close(): Promise<unknown> {
    return Promise.all([this.tool.close(), this.claude.close()])
  }
}

/** the client's tool as the model sees it: Gemini prefixes MCP tools with `mcp_<server>_` */
const offered = (call: Call, name: string): string => (call.provider === 'gemini' ? `mcp_client_${name}` : name)


/** the tool results the CLI sent back to the model in this call (function_call_output, functionResponse, tool_result) */
function resultsIn(call: Call): string[] {
  if (call.provider === 'codex') {
    return ((call.body?.input ?? []) as { type?: string; output?: unknown }[]).filter((i) => i.type === 'function_call_output').map((i) => JSON.stringify(i.output))
  }
  if (call.provider === 'claude') return toolResults({ path: '', body: call.body, at: 0, toolUseIds: [] }).map((r) => JSON.stringify(r.content))
  const contents = (call.body?.contents ?? []) as { parts?: { functionResponse?: { response: unknown } }[] }[]
  return contents.flatMap((c) => (c.parts ?? []).flatMap((p) => (p.functionResponse ? [JSON.stringify(p.functionResponse.response)] : [])))
}

/** the conversation as the model got it (the rendered prompt) */
const asked = (call: Call): string => JSON.stringify(call.provider === 'codex' ? call.body?.input : call.provider === 'gemini' ? call.body?.contents : call.body?.messages)

/** the names of the tools a model call offered */
function toolsOffered(call: Call): string[] {
  if (call.provider === 'gemini') return (call.body?.tools ?? []).flatMap((t: { functionDeclarations?: { name: string }[] }) => (t.functionDeclarations ?? []).map((f) => f.name))
  return (call.body?.tools ?? []).map((t: { name?: string; type?: string }) => t.name ?? t.type)
}

/** call get_weather for each city in one model response, then answer with what came back */
function weather(cities: string[], final = 'It is sunny.'): (call: Call) => Reply {
  return (call) => resultsIn(call).length > 0
    ? { text: [final] }
    : { text: ['Let me check.'], calls: cities.map((city) => ({ name: offered(call, 'get_weather'), args: { city } })) }
}
const ask = (kind: Kind, extra: Partial<Anthropic.MessageCreateParamsNonStreaming> = {}): Anthropic.MessageCreateParamsNonStreaming => ({
  model: MODEL[kind], max_tokens: 256, tools: [WEATHER], messages: [{ role: 'user', content: 'What is the weather in Paris?' }], ...extra,
})

const answer = answerToolUses

function accounts(models: Models, session: Record<string, unknown> = {}) {
  const common = { apiKey, killGraceMs: 500, idleTimeoutMs: 60_000, ...session }
  return [
    { id: ACCOUNT.codex, maxConcurrency: 2, models: [MODEL.codex], session: { kind: 'codex', baseUrl: `${models.tool.url}/v1`, model: MODEL.codex, ...common } },
    { id: ACCOUNT['gemini-cli'], maxConcurrency: 2, models: [MODEL['gemini-cli']], session: { kind: 'gemini-cli', baseUrl: models.tool.url, model: MODEL['gemini-cli'], ...common } },
    { id: ACCOUNT['claude-code'], maxConcurrency: 2, models: [MODEL['claude-code']], session: { kind: 'claude-code', baseUrl: models.claude.url, model: MODEL['claude-code'], ...common } },
  ]
}

async function fakes(t: Parameters<typeof start>[0]): Promise<Models> {
  const models = new Models(await startFakeToolModel(() => ({ text: ['unused'] })), await startFakeClaudeModel(() => ({ text: ['unused'] })))
  t.after(() => models.close())
  return models
}

async function startWith(t: Parameters<typeof start>[0], models: Models, session: Record<string, unknown> = {}): Promise<Started> {
  const started = await start(t, { dispatcher: { requestTimeoutMs: 60_000 }, accounts: accounts(models, session) })
  // the long-lived CLIs (Gemini ~1–2 s, Codex ~0.3 s) must be up before the first request
  await eventually(() => started.orch.dispatcher.accounts.every((a) => a.state === 'up' && a.sessionUp), 'every account is up', 60_000)
  return started
}

async function pendingToolCalls(url: string): Promise<Record<string, number>> {
  const json = await (await fetch(`${url}/admin/accounts`)).json() as { accounts: { id: string; pendingToolCalls: number; inFlight: number }[] }
  return Object.fromEntries(json.accounts.map((a) => [a.id, a.pendingToolCalls]))
}

test('the SDK tool loop through codex, gemini-cli and claude-code accounts: the client\'s tools, run by the client', { timeout: 300_000 }, async (t) => {
  const model = await fakes(t)
  const { client, url, orch } = await startWith(t, model)
  const account = ACCOUNT

  await t.test('non-streamed: stop_reason tool_use with the client\'s tool and input; the result goes back to the parked CLI', async () => {
    for (const kind of KINDS) {
      model.script = weather(['Paris'])
      const request = ask(kind)
      const { data: first, response } = await client.messages.create(request).withResponse()
      assert.equal(first.stop_reason, 'tool_use', kind)
      assert.equal(textOf(first), 'Let me check.', kind)
      const [use] = toolUses(first)
      assert.equal(toolUses(first).length, 1, kind)
      assert.equal(use.name, 'get_weather', `${kind}: the client's own tool name`)
      assert.deepEqual(use.input, { city: 'Paris' }, kind)
      assert.match(use.id, /^toolu_01[0-9A-Za-z]{22}$/, kind)
      assert.equal(response.headers.get('x-agyc-account'), account[kind])
      assert.equal((await pendingToolCalls(url))[account[kind]], 1, `${kind}: /admin/accounts shows the parked call`)
      const calls = model.calls(kind).length

      const { data: final, response: again } = await client.messages.create(answer(request, first, () => '22°C and sunny')).withResponse()
      assert.equal(final.stop_reason, 'end_turn', kind)
      assert.equal(textOf(final), 'It is sunny.', kind)
      assert.equal(again.headers.get('x-agyc-account'), account[kind], `${kind}: the continuation went to the account whose CLI waits`)
      assert.equal(model.calls(kind).length, calls + 1, `${kind}: one more model call, from the live CLI`)
      const back = model.calls(kind).at(-1)!
      assert.match(resultsIn(back).join(), /22°C and sunny/, `${kind}: the client's result reached the model as the tool's result`)
      assert.ok(!asked(back).includes('<tool_result'), `${kind}: not a fresh conversation with the history as text`)
      assert.equal((await pendingToolCalls(url))[account[kind]], 0, kind)
    }
  })

  await t.test('streamed: text deltas, then the tool_use block; the continuation streams its answer', async () => {
    for (const kind of KINDS) {
      model.script = weather(['Oslo'], 'Cold in Oslo.')
      const request = ask(kind, { messages: [{ role: 'user', content: 'Weather in Oslo?' }] })
      const stream = client.messages.stream(request)
      const events: string[] = []
      stream.on('streamEvent', (event) => events.push(event.type === 'content_block_start' ? `start:${event.content_block.type}` : event.type))
      const first = await stream.finalMessage()
      assert.equal(first.stop_reason, 'tool_use', kind)
      assert.deepEqual(toolUses(first).map((u) => [u.name, u.input]), [['get_weather', { city: 'Oslo' }]], kind)
      assert.ok(events.includes('start:tool_use'), `${kind}: a tool_use block in the stream`)
      assert.ok(events.indexOf('content_block_delta') < events.indexOf('start:tool_use'), `${kind}: the text streamed first`)
      const final = await client.messages.stream(answer(request, first, () => '-3°C')).finalMessage()
      assert.equal(final.stop_reason, 'end_turn', kind)
      assert.equal(textOf(final), 'Cold in Oslo.', kind)
      assert.match(resultsIn(model.calls(kind).at(-1)!).join(), /-3°C/, kind)
    }
  })

  await t.test('two calls in one model response: Codex and Claude Code give both in one message; Gemini CLI one message each', async () => {
    for (const kind of KINDS) {
      model.script = weather(['Paris', 'Rome'], 'Both sunny.')
      let request = ask(kind, { messages: [{ role: 'user', content: 'Paris and Rome?' }] })
      let message = await client.messages.create(request)
      const seen: string[][] = []
      for (let round = 0; message.stop_reason === 'tool_use' && round < 4; round++) {
        seen.push(toolUses(message).map((u) => (u.input as { city: string }).city))
        request = answer(request, message, (use) => `sunny in ${(use.input as { city: string }).city}`)
        message = await client.messages.create(request)
      }
      assert.deepEqual(seen, kind === 'gemini-cli' ? [['Paris'], ['Rome']] : [['Paris', 'Rome']], kind)
      assert.equal(textOf(message), 'Both sunny.', kind)
      const back = resultsIn(model.calls(kind).at(-1)!).join()
      assert.match(back, /sunny in Paris/, kind)
      assert.match(back, /sunny in Rome/, kind)
    }
  })

  await t.test('an unknown tool_use_id is served fresh: the history rendered as text for a new conversation', async () => {
    for (const kind of KINDS) {
      model.script = (call) => asked(call).includes('<tool_result id=\\"toolu_01unknown') ? { text: ['From the history.'] } : { text: ['wrong'] }
      const unknown = 'toolu_01unknownunknownunknown'
      const message = await client.messages.create(ask(kind, {
        messages: [
          { role: 'user', content: 'What is the weather in Paris?' },
          { role: 'assistant', content: [{ type: 'tool_use', id: unknown, name: 'get_weather', input: { city: 'Paris' } }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: unknown, content: 'rainy' }] },
        ],
      }))
      assert.equal(message.stop_reason, 'end_turn', kind)
      assert.equal(textOf(message), 'From the history.', kind)
      const prompt = asked(model.calls(kind).at(-1)!)
      assert.ok(prompt.includes('<tool_use id=\\"toolu_01unknownunknownunknown\\" name=\\"get_weather\\">'), `${kind}: the earlier call as text`)
      assert.ok(prompt.includes('rainy'), `${kind}: the earlier result as text`)
    }
  })

  await t.test('tool_choice: "none" offers no tool; "any" is a 400 naming why', async () => {
    for (const kind of KINDS) {
      model.script = () => ({ text: ['No tools here.'] })
      const message = await client.messages.create(ask(kind, { tool_choice: { type: 'none' } }))
      assert.equal(textOf(message), 'No tools here.', kind)
      const tools = toolsOffered(model.calls(kind).at(-1)!)
      assert.deepEqual(tools, [], `${kind}: the model was offered no tool`)
      const err = await apiError(client.messages.create(ask(kind, { tool_choice: { type: 'any' } })))
      assert.equal(err.status, 400, kind)
      assert.match(err.message, /tool_choice/, kind)
    }
  })

  await t.test('a client that leaves while the CLI answers its continuation stops the CLI\'s turn; the account serves on', async () => {
    for (const kind of KINDS) {
      model.script = weather(['Lima'])
      const request = ask(kind)
      const first = await client.messages.create(request)
      assert.equal(first.stop_reason, 'tool_use', kind)
      model.script = () => ({ text: ['too late'], delayMs: 10_000 })
      const abandoned = model.abandoned(kind)
      const calls = model.calls(kind).length
      const controller = new AbortController()
      const continuing = client.messages.create(answer(request, first, () => 'warm'), { signal: controller.signal })
      await eventually(() => model.calls(kind).length > calls, `${kind}: the CLI asked the model`, 10_000)
      controller.abort()
      await assert.rejects(continuing)
      await eventually(() => model.abandoned(kind) > abandoned, `${kind}: the CLI hung up on the model`, 10_000)
      await eventually(async () => {
        const json = await (await fetch(`${url}/admin/accounts`)).json() as { accounts: { id: string; inFlight: number; pendingToolCalls: number }[] }
        const a = json.accounts.find((x) => x.id === account[kind])!
        return a.inFlight === 0 && a.pendingToolCalls === 0
      }, `${kind}: the slot is free`)
      model.script = weather(['Kyiv'])
      assert.equal((await client.messages.create(ask(kind))).stop_reason, 'tool_use', `${kind}: the account serves the next conversation`)
    }
    // those conversations stay parked: the shutdown ends them (and the helper checks no CLI survives)
    assert.equal(orch.dispatcher.toolCalls.size, KINDS.length)
  })

  await t.test('shutdown while calls are parked and a request runs: every request answered, unparked, no CLI left', async () => {
    // the conversations of the test above are still parked, one per account
    assert.deepEqual(await pendingToolCalls(url), { [ACCOUNT.codex]: 1, [ACCOUNT['gemini-cli']]: 1, [ACCOUNT['claude-code']]: 1 })
    model.script = () => ({ text: ['never'], delayMs: 30_000 })
    const calls = model.calls('codex').length
    const running = client.messages.create(ask('codex')).then(() => 'answered', (err: { status?: number }) => `failed ${err.status}`)
    await eventually(() => model.calls('codex').length > calls, 'the running request reached the model', 10_000)
    for (const kind of ['codex', 'gemini-cli'] as const) {
      const pids = orch.dispatcher.accounts.find((a) => a.id === ACCOUNT[kind])!.childPids
      assert.equal(pids.size, 1, `${kind}: one CLI for the account; the bridge shares the agent's process`)
    }
    // Claude Code: a process ahead for the agent mode, and one per bridged conversation
    assert.ok(orch.dispatcher.accounts.find((a) => a.id === ACCOUNT['claude-code'])!.childPids.size >= 2)
    const pids = orch.dispatcher.accounts.flatMap((a) => [...a.childPids])
    await orch.close(1_000)
    assert.match(await running, /^failed 5\d\d$/, 'the running request was answered with an error')
    assert.equal(orch.dispatcher.toolCalls.size, 0, 'no parked call is left in the directory')
    for (const pid of pids) assert.equal(isAlive(pid), false, `CLI ${pid} survived the shutdown`)
  })
})

test('a parked call past its deadline ends; the late result is served fresh', { timeout: 180_000 }, async (t) => {
  const model = await fakes(t)
  const { client, url, orch } = await startWith(t, model, { toolResultTimeoutMs: 1_500 })
  const account = ACCOUNT

  await t.test('a call past toolResultTimeoutMs frees its slot; the late result is served fresh with the history as text', async () => {
    for (const kind of KINDS) {
      model.script = weather(['Lima'])
      const request = ask(kind)
      const first = await client.messages.create(request)
      assert.equal(first.stop_reason, 'tool_use', kind)
      assert.equal((await pendingToolCalls(url))[account[kind]], 1, kind)
      await eventually(async () => (await pendingToolCalls(url))[account[kind]] === 0, `${kind}: the deadline unparked the call`, 10_000)
      assert.equal(orch.dispatcher.toolCalls.size, 0, kind)
      model.script = (call) => asked(call).includes('<tool_result') ? { text: ['Served fresh.'] } : { text: ['wrong'] }
      const late = await client.messages.create(answer(request, first, () => 'warm'))
      assert.equal(textOf(late), 'Served fresh.', kind)
      assert.match(asked(model.calls(kind).at(-1)!), /<tool_use id=\\"toolu_01/, kind)
    }
  })
})
