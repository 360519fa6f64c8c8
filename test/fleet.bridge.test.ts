/**
 * A tool call bridged on one node is continued when the follow-up lands on another (issue 17): three orchestrator
 * processes on one redis-server, each with an account running the REAL Codex (`codex app-server`, the cheapest agent
 * CLI to bridge) pointed at its own scripted fake model (test/helpers/fake-tool-model.ts), so every model call says
 * which node's CLI made it. The official SDK asks node A with the client's `get_weather` tool: A's CLI parks on the
 * call and the client gets `stop_reason: "tool_use"`. The client's `tool_result` is sent to node C, which finds the
 * pending call in the fleet's tool-call directory and forwards it to A, where the parked CLI takes the result and
 * answers. test/fleet.routing.test.ts covers the directory with a stand-in entry; here the call is really parked.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { test } from 'node:test'
import Anthropic from '@anthropic-ai/sdk'
import { SERVED_BY } from '../src/cluster/forward.ts'
import { startFakeToolModel, type FakeToolModel, type ModelCall } from './helpers/fake-tool-model.ts'
import { freshPrefix, redisFor, startNode, untilMembers, type FleetNode } from './helpers/fleet.ts'
import { eventually, isAlive, textOf } from './helpers/orchestrator.ts'
import { needs, REDIS_SERVER } from './helpers/servers.ts'

const MODEL = 'gpt-fake'
const NODES = ['A', 'B', 'C'] as const

const WEATHER: Anthropic.Tool = {
  name: 'get_weather',
  description: 'The current weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
}

/** the tool results Codex sent back to its model in this call (`function_call_output` items) */
const resultsIn = (call: ModelCall): string[] =>
  ((call.body?.input ?? []) as { type?: string; output?: unknown }[]).filter((i) => i.type === 'function_call_output').map((i) => JSON.stringify(i.output))

/** call get_weather for Paris; once the result is back, answer with the final text */
const weather = (call: ModelCall) => resultsIn(call).length > 0
  ? { text: ['Sunny in Paris, says the parked CLI.'] }
  : { text: ['Let me check.'], calls: [{ name: 'get_weather', args: { city: 'Paris' } }] }

interface AccountRow { id: string; state: string; pendingToolCalls: number; inFlight: number; completed: number; health: { session?: unknown } }

async function accountsOf(node: FleetNode): Promise<AccountRow[]> {
  return ((await (await fetch(`${node.url}/admin/accounts`)).json()) as { accounts: AccountRow[] }).accounts
}

/** every process descended from `pid` (the node's Codex CLIs and whatever they started), from /proc */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      // the ppid is the 2nd field after the parenthesised command name (which may hold spaces)
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)])
    } catch { /* gone meanwhile */ }
  }
  const out: number[] = []
  const walk = (p: number): void => {
    for (const c of children.get(p) ?? []) {
      out.push(c)
      walk(c)
    }
  }
  walk(pid)
  return out
}

/** the node's log lines as JSON */
const linesOf = (node: FleetNode): Record<string, unknown>[] =>
  node.output().split('\n').filter((l) => l.startsWith('{')).flatMap((l) => {
    try { return [JSON.parse(l) as Record<string, unknown>] } catch { return [] }
  })

/** the access lines of model requests a node served (admin requests log a line without a model) */
const served = (node: FleetNode): Record<string, unknown>[] => linesOf(node).filter((l) => l.msg === 'request' && l.model !== undefined)

test('a tool call parked by node A\'s Codex is continued on A when the tool_result lands on node C', { ...needs(REDIS_SERVER), timeout: 60_000 }, async (t) => {
  process.env.AGYC_TEST_BRIDGE_KEY = 'key-bridge' // inherited by the nodes (their accounts read it fromEnv)
  const redis = await redisFor(t)
  const keyPrefix = freshPrefix()
  // one fake model per node: a model call's fake names the node whose CLI made it
  const models = new Map<string, FakeToolModel>()
  for (const id of NODES) {
    const model = await startFakeToolModel(weather)
    t.after(() => model.close())
    models.set(id, model)
  }
  const nodes = await Promise.all(NODES.map((nodeId) => startNode(t, {
    nodeId, redis: redis.url, keyPrefix,
    dispatcher: { requestTimeoutMs: 30_000 },
    accounts: [{
      id: `${nodeId}-codex`, maxConcurrency: 2, models: [MODEL],
      session: { kind: 'codex', baseUrl: `${models.get(nodeId)!.url}/v1`, model: MODEL, apiKey: { fromEnv: 'AGYC_TEST_BRIDGE_KEY' }, killGraceMs: 500, idleTimeoutMs: 60_000 },
    }],
  })))
  const [a, b, c] = nodes
  await untilMembers(nodes, 3)
  // the long-lived CLIs up before the first request (Codex ~0.3 s)
  await eventually(async () => (await Promise.all(nodes.map(accountsOf))).every(([x]) => x.state === 'up' && x.health.session === 'up'),
    'every node\'s codex account is up', 20_000)
  const clis = new Map(nodes.map((n) => [n.nodeId, descendants(n.child.pid!)]))
  for (const [id, pids] of clis) assert.ok(pids.length > 0, `node ${id} runs its Codex CLI`)

  const request: Anthropic.MessageCreateParamsNonStreaming = {
    model: MODEL, max_tokens: 256, tools: [WEATHER], messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
  }
  const { data: first, response } = await new Anthropic({ baseURL: a.url, apiKey: 'test', maxRetries: 0 }).messages.create(request).withResponse()
  assert.equal(first.stop_reason, 'tool_use')
  assert.equal(response.headers.get('x-agyc-account'), 'A-codex')
  assert.equal(response.headers.get(SERVED_BY), null, 'served where it was sent')
  const uses = first.content.filter((x): x is Anthropic.ToolUseBlock => x.type === 'tool_use')
  assert.deepEqual(uses.map((u) => [u.name, u.input]), [['get_weather', { city: 'Paris' }]])
  const [use] = uses
  assert.equal((await accountsOf(a))[0].pendingToolCalls, 1, 'A\'s CLI waits on the call')
  assert.equal(models.get('A')!.calls.length, 1)

  const modelCalls = Object.fromEntries(NODES.map((id) => [id, models.get(id)!.calls.length]))
  const { data: final, response: again } = await new Anthropic({ baseURL: c.url, apiKey: 'test', maxRetries: 0 }).messages.create({
    ...request,
    messages: [
      ...request.messages,
      { role: 'assistant', content: first.content as Anthropic.ContentBlockParam[] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '22°C and sunny' }] },
    ],
  }).withResponse()
  assert.equal(final.stop_reason, 'end_turn')
  assert.equal(textOf(final), 'Sunny in Paris, says the parked CLI.')
  assert.equal(again.headers.get(SERVED_BY), 'A', 'C forwarded the continuation to A')
  assert.equal(again.headers.get('x-agyc-account'), 'A-codex')

  // the model heard the result from A's CLI, in the conversation it was parked in (not a fresh one with the history as
  // text); B's and C's CLIs asked their models nothing
  assert.equal(models.get('A')!.calls.length, modelCalls.A + 1, 'one more model call, from A\'s CLI')
  const back = models.get('A')!.calls.at(-1)!
  assert.match(resultsIn(back).join(), /22°C and sunny/, 'the client\'s result reached A\'s model as the tool\'s result')
  assert.ok(!JSON.stringify(back.body?.input).includes('<tool_result'), 'the parked conversation, not the history rendered as text')
  assert.equal(models.get('B')!.calls.length, 0, 'B\'s CLI made no model request')
  assert.equal(models.get('C')!.calls.length, 0, 'C\'s CLI made no model request')

  // A's access line names the call it continued; C's says it forwarded the request to A for the tool call
  await eventually(() => served(a).length === 2, 'A logged both requests', 5_000)
  assert.deepEqual(served(a).map((l) => [l.account, l.status, l.continues]), [['A-codex', 200, undefined], ['A-codex', 200, use.id]],
    'A served the first request and continued the call on the same account')
  // the reason matters: the conversation's affinity entry also names A and would send a follow-up there; the tool-call
  // directory comes first (src/cluster/route.ts)
  await eventually(() => linesOf(c).some((l) => l.msg === 'request forwarded'), 'C logged the forward', 5_000)
  const forwarded = linesOf(c).filter((l) => l.msg === 'request forwarded')
  assert.deepEqual(forwarded.map((l) => [l.forwardedTo, l.reason, l.outcome, l.status]), [['A', 'tool-call', 'answered', 200]])
  assert.deepEqual(served(c), [], 'C served no model request itself')
  assert.deepEqual(served(b), [], 'B served nothing')
  assert.ok(!linesOf(b).some((l) => l.msg === 'request forwarded'), 'B forwarded nothing')

  // /admin/accounts: A's call is no longer pending, its two requests completed; B's and C's accounts did nothing
  const [rowA] = await accountsOf(a)
  assert.deepEqual([rowA.pendingToolCalls, rowA.inFlight, rowA.completed], [0, 0, 2])
  for (const node of [b, c]) {
    const [row] = await accountsOf(node)
    assert.deepEqual([row.pendingToolCalls, row.completed], [0, 0], node.nodeId)
  }

  // no CLI outlives its node
  const pids = [...clis.values()].flat().concat(nodes.flatMap((n) => descendants(n.child.pid!)))
  await Promise.all(nodes.map((n) => n.stop()))
  for (const n of nodes) assert.equal(n.child.exitCode, 0, `${n.nodeId} exited cleanly:\n${n.output().slice(-2_000)}`)
  await eventually(() => pids.every((pid) => !isAlive(pid)), `no CLI survives its node (${pids.filter(isAlive).join(', ')})`, 5_000)
})
