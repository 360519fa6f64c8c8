/**
 * Faults in a fleet (issue 17), with three orchestrator processes, a real redis-server and nginx from docs/nginx.conf:
 * a node SIGKILLed under load leaves no request hanging and its conversations re-home on their next turn; Redis
 * stopped under load and restarted fails no request, the nodes say "degraded" meanwhile, and shared state resumes.
 * Loads are short and bounded (a few hundred requests over a couple of seconds): the machine has two cores.
 */
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'node:test'
import { scopes } from '../src/cluster/keys.ts'
import { FleetQuota } from '../src/cluster/quota.ts'
import { UNKNOWN } from '../src/cluster/store.ts'
import { storesFor } from './helpers/cluster.ts'
import { freshPrefix, mockAccountsOf, redisFor, startFleetNginx, startNode, untilMembers, type FleetNode } from './helpers/fleet.ts'
import { NGINX, needs, REDIS_SERVER } from './helpers/servers.ts'

const only = needs(REDIS_SERVER, NGINX)

type Outcome = { kind: 'served' | 'error' | 'cut' | 'hung'; status: number; detail?: string }

/**
 * One request to its end: `served` (200 and a complete answer), `error` (a definite error status), `cut` (a stream
 * that ended with an error event, or a connection the server closed: the client knows it failed), `hung` (no end
 * within 15 s: what must never happen).
 */
async function call(url: string, body: object, headers: Record<string, string> = {}): Promise<Outcome> {
  const stream = (body as { stream?: boolean }).stream === true
  let status = 0
  try {
    const res = await fetch(`${url}/v1/messages`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal: AbortSignal.timeout(15_000),
    })
    status = res.status
    const text = await res.text()
    if (status !== 200) return { kind: 'error', status, detail: text.slice(0, 200) }
    if (stream) return text.includes('event: message_stop') ? { kind: 'served', status } : { kind: 'cut', status, detail: text.slice(-200) }
    JSON.parse(text)
    return { kind: 'served', status }
  } catch (err) {
    const e = err as Error
    if (e.name === 'TimeoutError') return { kind: 'hung', status }
    return { kind: 'cut', status, detail: `${e.name}: ${e.message} ${(e.cause as Error | undefined)?.message ?? ''}` }
  }
}

const turn = (content: string, extra: object = {}) => ({ model: 'claude-test-1', max_tokens: 32, messages: [{ role: 'user', content }], ...extra })

/** Runs `count` requests from `concurrency` loops; `each(i)` makes the i-th. */
async function load(count: number, concurrency: number, each: (i: number) => Promise<Outcome>): Promise<Outcome[]> {
  const out: Outcome[] = []
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) out.push(await each(next++))
  }))
  return out
}

test('(e) a node SIGKILLed under load: every request is answered (served or a definite error), its conversations re-home', { ...only, timeout: 60_000 }, async (t) => {
  const redis = await redisFor(t)
  const keyPrefix = freshPrefix()
  // ~300 ms an answer: requests are in flight on the node when it dies
  const session = { latencyMs: 100, deltas: 4, deltaDelayMs: 50 }
  // n3 takes [[mock:sleep MS]] directives: the continuations below are still running there when it dies
  const nodes = await Promise.all(['n1', 'n2', 'n3'].map((nodeId) => startNode(t, { nodeId, redis: redis.url, keyPrefix,
    accounts: mockAccountsOf(nodeId, 2, { ...session, directives: nodeId === 'n3' }) })))
  await untilMembers(nodes, 3)
  const nginx = await startFleetNginx(t, nodes.map((n) => n.port))
  const [n1, , n3] = nodes

  // six conversations homed on n3 (Claude Code's session header names them)
  const sessions = Array.from({ length: 6 }, (_, i) => ({ 'x-claude-code-session-id': `conv-${i}-${Date.now()}` }))
  for (const headers of sessions) assert.equal((await call(n3.url, turn('first turn'), headers)).kind, 'served')

  const started = Date.now()
  const killed = sleep(600).then(() => n3.kill())
  const [spread, homed] = await Promise.all([
    // 160 requests spread by nginx, a third of them streamed
    load(160, 12, (i) => call(nginx.url, turn(`load ${i}`, { stream: i % 3 === 0 }))),
    // continuations of n3's conversations sent to n1, forwarded to n3: in flight there when it dies
    sleep(300).then(() => Promise.all(sessions.slice(0, 3).map((headers, i) => call(n1.url, turn(`second turn ${i} [[mock:sleep 3000]]`, { stream: i === 0 }), headers)))),
  ])
  await killed
  // n1 forwarded them to n3, which died under them: n1 answers a 502 in the error shape (or ends the stream with an
  // error event), at once, not at a timeout
  for (const o of homed) assert.ok(o.kind === 'error' ? o.status === 502 : o.kind === 'cut', `a definite error from n1 (${JSON.stringify(o)})`)
  const all = [...spread, ...homed]
  assert.equal(all.filter((o) => o.kind === 'hung').length, 0, 'no request hangs')
  const errors = all.filter((o) => o.kind === 'error')
  for (const e of errors) {
    assert.ok([502, 503, 529].includes(e.status), `a definite error status (${e.status} ${e.detail})`)
    assert.match(e.detail ?? '', /^\{"type":"error","error":\{"type":"[a-z_]+","message"/, 'in the Anthropic error shape (nginx\'s included)')
  }
  assert.ok(all.filter((o) => o.kind === 'served').length >= all.length / 2, `most requests were served (${JSON.stringify(all.filter((o) => o.kind !== 'served'))})`)
  assert.ok(Date.now() - started < 20_000)

  // next turn of every conversation n3 held: served by a live node's account, which then keeps it
  for (const headers of sessions) {
    const first = await fetch(`${nginx.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(turn('after the crash')) })
    assert.equal(first.status, 200, await first.clone().text())
    const account = first.headers.get('x-agyc-account')!
    assert.match(account, /^n[12]-/, 're-homed on a live node')
    await first.text()
    const again = await fetch(`${n1.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(turn('and after')) })
    assert.equal(again.headers.get('x-agyc-account'), account, 'and stays there')
    await again.text()
  }
})

test('(f) Redis stopped under load, then restarted: no request fails, the nodes say "degraded", shared limits resume', { ...only, timeout: 60_000 }, async (t) => {
  const redis = await redisFor(t)
  const keyPrefix = freshPrefix()
  // a budget far from binding: every request reserves in Redis while it answers
  const quota = [{ window: '1m', requests: 100_000 }]
  const nodes = await Promise.all(['n1', 'n2', 'n3'].map((nodeId) => startNode(t, {
    nodeId, redis: redis.url, keyPrefix, accounts: mockAccountsOf(nodeId, 2, { latencyMs: 20 }, { quota }),
  })))
  await untilMembers(nodes, 3)
  const nginx = await startFleetNginx(t, nodes.map((n) => n.port))
  const state = async (node: FleetNode): Promise<string> => /^agyc_cluster_state (\d)/m.exec(await (await fetch(`${node.url}/metrics`)).text())?.[1] ?? '?'

  let degradedSeen = false
  const outage = (async () => {
    await sleep(500)
    await redis.kill('SIGKILL')
    // every node says so: the metric, the dashboard's snapshot; and stays ready
    for (const node of nodes) {
      for (let i = 0; (await state(node)) !== '0'; i++) {
        assert.ok(i < 100, `${node.nodeId} never said degraded`)
        await sleep(20)
      }
      const snap = (await (await fetch(`${node.url}/admin/accounts`)).json()) as { cluster?: { state: string } }
      assert.equal(snap.cluster?.state, 'degraded')
      assert.equal((await fetch(`${node.url}/readyz`)).status, 200, '/readyz stays ready')
    }
    degradedSeen = true
    await sleep(700)
    await redis.restart()
  })()
  const results = await load(300, 10, (i) => call(nginx.url, turn(`load ${i}`, { stream: i % 4 === 0 })))
  await outage
  assert.ok(degradedSeen)
  assert.deepEqual(results.filter((r) => r.kind !== 'served'), [], 'no request failed because Redis went away')

  // back: every node ok, all three listed again, and the budget counted in Redis again (it restarted empty)
  for (const node of nodes) {
    for (let i = 0; (await state(node)) !== '1'; i++) {
      assert.ok(i < 150, `${node.nodeId} never resumed`)
      await sleep(20)
    }
  }
  await untilMembers(nodes, 3)
  for (let i = 0; i < 6; i++) assert.equal((await call(nodes[0].url, turn(`after ${i}`))).kind, 'served')
  const [store] = await storesFor(t, redis.url, 1, { keyPrefix })
  const usage = await new FleetQuota(store).usage(scopes.account('n1-a'), ['1m'])
  assert.notEqual(usage, UNKNOWN)
  const usageB = await new FleetQuota(store).usage(scopes.account('n1-b'), ['1m'])
  const counted = (usage as { requests: number }[])[0].requests + (usageB as { requests: number }[])[0].requests
  assert.ok(counted >= 6, `requests after the restart are counted in Redis again (${counted})`)
})
