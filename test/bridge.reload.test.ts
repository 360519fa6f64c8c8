/**
 * A hot reload while a conversation is parked on a tool call (issue 14, item 5: "shutdown and reload answer or end
 * every pending call"). The accounts run the REAL Claude Code (`claude -p`) against a scripted fake Anthropic API on
 * 127.0.0.1 (test/helpers/fake-claude-tool-model.ts); the official SDK is the client.
 *
 * One preset is enough: what a reload does to a parked call is the main thread's (src/dispatch/reconcile.ts drains
 * and stops the account, account-handle.ts frees its slots and its ids) and the worker's bridged-session stop
 * (bridge/bridged-session.ts: every conversation closed before the CLI), which every preset shares. Claude Code is
 * the one whose parked conversation is a process of its own, so "the pending call is ended" can be checked by PID;
 * Codex's and Gemini's parked threads live in the account's one CLI, which stops with the account anyway.
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


/** `prewarm: 0`: the only new process a request makes is its conversation's (processes started ahead have their own test) */
function claudeAccount(model: FakeClaudeModel, id: string, extra: Record<string, unknown> = {}) {
  return {
    id, maxConcurrency: 2, models: [MODEL],
    session: { kind: 'claude-code', baseUrl: model.url, model: MODEL, apiKey: { fromEnv: 'AGYC_TEST_BRIDGE_KEY' }, killGraceMs: 500, idleTimeoutMs: 60_000, prewarm: 0 },
    ...extra,
  }
}

/** the model calls the client's tool; a result handed to the live CLI ends the turn; a fresh conversation says so */
function script(model: FakeClaudeModel): void {
  model.script = (call) => {
    if (toolResults(call).length > 0) return { text: ['From the live CLI.'] }
    if (JSON.stringify(call.body?.messages).includes('<tool_result')) return { text: ['Served fresh.'] }
    return { text: ['Let me check.'], calls: [{ name: 'get_weather', input: { city: 'Paris' } }] }
  }
}

const ask: Anthropic.MessageCreateParamsNonStreaming = {
  model: MODEL, max_tokens: 256, tools: [WEATHER], messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
}

const answer = (message: Anthropic.Message) => answerToolUses(ask, message, () => '22°C and sunny')

function rewrite(file: string, change: (config: { accounts: unknown[] }) => void): void {
  const config = JSON.parse(readFileSync(file, 'utf8')) as { accounts: unknown[] }
  change(config)
  writeFileSync(file, JSON.stringify(config, null, 2))
}

interface Row { id: string; state: string; inFlight: number; pendingToolCalls: number }
async function rows(url: string): Promise<Row[]> {
  return ((await (await fetch(`${url}/admin/accounts`)).json()) as { accounts: Row[] }).accounts
}

/** Opens a conversation that parks on a tool call; returns the first answer and the PID of its own CLI. */
async function park(started: Started, id: string): Promise<{ first: Anthropic.Message; pid: number; account: AccountHandle }> {
  const account = started.orch.dispatcher.accounts.find((a) => a.id === id && !started.orch.reconciler.retiring(a))!
  const before = new Set(account.childPids)
  const { data: first, response } = await started.client.messages.create(ask).withResponse()
  assert.equal(first.stop_reason, 'tool_use')
  assert.equal(response.headers.get('x-agyc-account'), id)
  const fresh = [...account.childPids].filter((pid) => !before.has(pid))
  assert.equal(fresh.length, 1, 'one CLI process of its own for the bridged conversation')
  assert.equal((await rows(started.url)).find((r) => r.id === id)?.pendingToolCalls, 1)
  return { first, pid: fresh[0], account }
}

async function startUp(t: Parameters<typeof start>[0], accounts: unknown[]): Promise<Started> {
  const started = await start(t, { dispatcher: { requestTimeoutMs: 60_000 }, accounts })
  await eventually(() => started.orch.dispatcher.accounts.every((a) => a.state === 'up' && a.sessionUp), 'every account is up', 60_000)
  return started
}

test('a reload that leaves the account unchanged: the parked conversation continues in its live CLI', { timeout: 120_000 }, async (t) => {
  const model = await startFakeClaudeModel(() => ({ text: ['unused'] }))
  t.after(() => model.close())
  script(model)
  const started = await startUp(t, [claudeAccount(model, 'claude-a')])
  const { first, pid } = await park(started, 'claude-a')

  rewrite(started.configFile, (c) => { c.accounts.push({ id: 'other', maxConcurrency: 1, models: ['mock-only'], session: { kind: 'mock' } }) })
  const res = await post(started.url, '/admin/reload', '')
  assert.equal(res.status, 200)
  assert.deepEqual(res.json.unchanged, ['claude-a'])
  await started.orch.reconciler.settled()
  assert.ok(isAlive(pid), 'the parked CLI lives on')

  const { data: final, response } = await started.client.messages.create(answer(first)).withResponse()
  assert.equal(response.headers.get('x-agyc-account'), 'claude-a')
  assert.equal(textOf(final), 'From the live CLI.', 'the result went to the parked CLI, not to a fresh conversation')
  assert.equal((await rows(started.url)).find((r) => r.id === 'claude-a')?.pendingToolCalls, 0)
})

test('a reload that changes or removes the account ends its parked call: CLI gone, slot freed, the follow-up served fresh', { timeout: 240_000 }, async (t) => {
  const model = await startFakeClaudeModel(() => ({ text: ['unused'] }))
  t.after(() => model.close())
  script(model)
  const started = await startUp(t, [claudeAccount(model, 'claude-a')])
  const { orch, url, client, configFile } = started

  await t.test('changed: the follow-up, sent at once, waits for the replacement and gets a 200 from a fresh conversation', async () => {
    const { first, pid, account: old } = await park(started, 'claude-a')
    rewrite(configFile, (c) => { c.accounts = [claudeAccount(model, 'claude-a', { maxConcurrency: 3 })] })
    const res = await post(url, '/admin/reload', '')
    assert.equal(res.status, 200)
    assert.deepEqual(res.json.restarted, ['claude-a'])
    // not waiting for the old account to stop: the client comes back whenever it likes
    const { data: final, response } = await client.messages.create(answer(first)).withResponse()
    assert.equal(response.status, 200)
    assert.equal(response.headers.get('x-agyc-account'), 'claude-a')
    assert.equal(textOf(final), 'Served fresh.', 'a fresh conversation with the history as text')
    await orch.reconciler.settled()
    assert.equal(isAlive(pid), false, `the parked CLI ${pid} was ended`)
    assert.deepEqual([old.state, old.assigned, old.parkedCalls], ['stopped', 0, 0], 'the old account let go of the slot and the call')
    assert.equal(orch.dispatcher.toolCalls.size, 0, 'no parked call left in the directory')
    await eventually(async () => {
      const row = (await rows(url)).find((r) => r.id === 'claude-a')!
      return row.pendingToolCalls === 0 && row.inFlight === 0
    }, 'the account shows no pending call and a free slot')
  })

  await t.test('removed: the parked CLI ends with its account; the follow-up goes fresh to the account that serves the model now', async () => {
    const { first, pid, account: old } = await park(started, 'claude-a')
    rewrite(configFile, (c) => { c.accounts = [claudeAccount(model, 'claude-b')] })
    const res = await post(url, '/admin/reload', '')
    assert.equal(res.status, 200)
    assert.deepEqual(res.json.removed, ['claude-a'])
    await orch.reconciler.settled()
    assert.equal(isAlive(pid), false, `the parked CLI ${pid} was ended`)
    assert.deepEqual([old.state, old.assigned, old.parkedCalls], ['stopped', 0, 0], 'the old account let go of the slot and the call')
    assert.equal(orch.dispatcher.toolCalls.size, 0, 'no parked call left in the directory')
    assert.deepEqual((await rows(url)).map((r) => [r.id, r.pendingToolCalls, r.inFlight]), [['claude-b', 0, 0]])
    const { data: final, response } = await client.messages.create(answer(first)).withResponse()
    assert.equal(response.status, 200)
    assert.equal(response.headers.get('x-agyc-account'), 'claude-b')
    assert.equal(textOf(final), 'Served fresh.')
  })
})
