/**
 * Claude Code bridge processes started ahead (`prewarm` for bridged conversations; workers/sessions/bridge/
 * claude-warm.ts), through an orchestrator whose accounts run the REAL `claude` against a scripted fake Anthropic API
 * on 127.0.0.1 (test/helpers/fake-claude-tool-model.ts). A new bridged conversation takes a process started ahead,
 * which is replaced in the background; the processes waiting are killed when the account stops, is reloaded, or its
 * idle worker is retired: checked by PID.
 */
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { test } from 'node:test'
import type Anthropic from '@anthropic-ai/sdk'
import type { AccountHandle } from '../src/dispatch/account-handle.ts'
import { startFakeClaudeModel, toolResults, type FakeClaudeModel } from './helpers/fake-claude-tool-model.ts'
import { eventually, isAlive, post, start, textOf, type Started } from './helpers/orchestrator.ts'
import { WEATHER, answerToolUses } from './helpers/tool-loop.ts'

process.env.AGYC_TEST_BRIDGE_KEY = 'key-bridge'
const MODEL = 'claude-fake-1'


function claudeAccount(model: FakeClaudeModel, id: string, session: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    id, maxConcurrency: 2, models: [MODEL],
    session: {
      kind: 'claude-code', baseUrl: model.url, model: MODEL, apiKey: { fromEnv: 'AGYC_TEST_BRIDGE_KEY' }, killGraceMs: 500, idleTimeoutMs: 60_000,
      ...session,
    },
    ...extra,
  }
}

const ask = (text = 'What is the weather in Paris?'): Anthropic.MessageCreateParamsNonStreaming => ({
  model: MODEL, max_tokens: 256, tools: [WEATHER], messages: [{ role: 'user', content: text }],
})

const answer = (request: Anthropic.MessageCreateParamsNonStreaming, message: Anthropic.Message) => answerToolUses(request, message, () => '22°C')

async function fakeModel(t: Parameters<typeof start>[0]): Promise<FakeClaudeModel> {
  const model = await startFakeClaudeModel(() => ({ text: ['unused'] }))
  t.after(() => model.close())
  // a prompt with "call" calls the client's tool; its result ends the turn; anything else is answered at once
  model.script = (call) => {
    if (toolResults(call).length > 0) return { text: ['It is warm.'] }
    return JSON.stringify(call.body?.messages).includes('call') ? { text: ['Let me check.'], calls: [{ name: 'get_weather', input: { city: 'Paris' } }] } : { text: ['Hello.'] }
  }
  return model
}

/** the account's processes that run the bridge's arguments (`--strict-mcp-config`), as opposed to its agent mode's */
function bridgePids(account: AccountHandle): number[] {
  return [...account.childPids].filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('--strict-mcp-config') && isAlive(pid)
    } catch {
      return false
    }
  })
}

const accountOf = (started: Started, id: string): AccountHandle =>
  started.orch.dispatcher.accounts.find((a) => a.id === id && !started.orch.reconciler.retiring(a))!

test('tools "client", prewarm 2: two processes wait; a conversation takes one, which is replaced; stop kills them', { timeout: 180_000 }, async (t) => {
  const model = await fakeModel(t)
  const started = await start(t, { dispatcher: { requestTimeoutMs: 60_000 }, accounts: [claudeAccount(model, 'claude-a', { tools: 'client', prewarm: 2 })] })
  const { client, orch } = started
  const account = accountOf(started, 'claude-a')
  await eventually(() => account.state === 'up' && bridgePids(account).length === 2, 'two bridge processes started ahead', 60_000)
  assert.equal(account.childPids.size, 2, 'and no process ahead for the agent mode: with tools "client" every request is bridged')
  const ahead = bridgePids(account)

  const request = ask('call the tool')
  const first = await client.messages.create(request)
  assert.equal(first.stop_reason, 'tool_use')
  assert.equal(textOf(await client.messages.create(answer(request, first))), 'It is warm.')
  // the conversation closed with its turn: its process is gone, and it was one of those started ahead
  await eventually(() => ahead.filter((pid) => isAlive(pid)).length === 1, 'the conversation ran in a process started ahead', 10_000)
  await eventually(() => bridgePids(account).length === 2, 'replaced: two wait again', 30_000)

  const waiting = bridgePids(account)
  await orch.close(2_000)
  for (const pid of waiting) assert.equal(isAlive(pid), false, `process ${pid} started ahead survived the stop`)
})

test('tools "auto": no bridge process ahead until the account bridges a conversation; then prewarm of them', { timeout: 180_000 }, async (t) => {
  const model = await fakeModel(t)
  const started = await start(t, { dispatcher: { requestTimeoutMs: 60_000 }, accounts: [claudeAccount(model, 'claude-a', { prewarm: 1 })] })
  const account = accountOf(started, 'claude-a')
  await eventually(() => account.state === 'up' && account.childPids.size === 1, 'the agent mode\'s process started ahead', 60_000)
  assert.deepEqual(bridgePids(account), [], 'no bridge process before a bridged conversation')
  assert.equal(textOf(await started.client.messages.create(ask())), 'Hello.')
  await eventually(() => bridgePids(account).length === 1, 'one bridge process waits for the next conversation', 30_000)
  const [next] = bridgePids(account)
  assert.equal(textOf(await started.client.messages.create(ask('Hello again'))), 'Hello.')
  await eventually(() => !isAlive(next) && bridgePids(account).length === 1, 'the next conversation took it, and it was replaced', 30_000)
})

test('a reload that changes the account kills its processes started ahead; the replacement starts its own', { timeout: 180_000 }, async (t) => {
  const model = await fakeModel(t)
  const started = await start(t, { dispatcher: { requestTimeoutMs: 60_000 }, accounts: [claudeAccount(model, 'claude-a', { tools: 'client', prewarm: 1 })] })
  const old = accountOf(started, 'claude-a')
  await eventually(() => old.state === 'up' && bridgePids(old).length === 1, 'one bridge process started ahead', 60_000)
  const [warm] = bridgePids(old)
  const config = JSON.parse(readFileSync(started.configFile, 'utf8')) as { accounts: unknown[] }
  config.accounts = [claudeAccount(model, 'claude-a', { tools: 'client', prewarm: 1 }, { maxConcurrency: 3 })]
  writeFileSync(started.configFile, JSON.stringify(config))
  assert.deepEqual((await post(started.url, '/admin/reload', '')).json.restarted, ['claude-a'])
  await started.orch.reconciler.settled()
  assert.equal(isAlive(warm), false, `process ${warm} started ahead survived the reload`)
  const replacement = accountOf(started, 'claude-a')
  assert.notEqual(replacement, old)
  await eventually(() => bridgePids(replacement).length === 1, 'the replacement keeps its own process ahead', 30_000)
  assert.equal(textOf(await started.client.messages.create(ask())), 'Hello.')
})

test('lazy workers: an idle worker is retired with its processes started ahead, never while a call is parked', { timeout: 180_000 }, async (t) => {
  const model = await fakeModel(t)
  const started = await start(t, {
    dispatcher: { requestTimeoutMs: 60_000, lazyWorkers: { enabled: true, idleMs: 600 } },
    health: { heartbeatMs: 100 },
    accounts: [claudeAccount(model, 'claude-a', { tools: 'client', prewarm: 1 })],
  })
  const { client, url } = started
  const account = accountOf(started, 'claude-a')
  assert.equal(account.childPids.size, 0, 'no worker, no process before the first request')

  // a call parked for longer than idleMs: the account is not idle, its CLI waits
  const request = ask('call the tool')
  const first = await client.messages.create(request)
  assert.equal(first.stop_reason, 'tool_use')
  await eventually(() => bridgePids(account).length === 2, 'the parked conversation\'s process and one started ahead', 30_000)
  await new Promise((r) => setTimeout(r, 2_000))
  assert.equal(account.parked, false, 'the worker was not retired while a call is parked')
  const rows = (await (await fetch(`${url}/admin/accounts`)).json()) as { accounts: { id: string; pendingToolCalls: number }[] }
  assert.equal(rows.accounts[0].pendingToolCalls, 1)
  assert.equal(textOf(await client.messages.create(answer(request, first))), 'It is warm.', 'the continuation found its CLI')

  await eventually(() => bridgePids(account).length === 1, 'the conversation ended with its turn', 10_000)
  const [warm] = bridgePids(account)
  await eventually(() => account.parked, 'the idle worker is retired', 10_000)
  await eventually(() => !isAlive(warm), `process ${warm} started ahead is gone with it`, 5_000)
  assert.equal(account.parkedCalls, 0)
})
