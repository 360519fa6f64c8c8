/**
 * What the fleet shares on Redis (issue 17), with three orchestrator processes, a real redis-server, nginx from
 * docs/nginx.conf and `http` accounts on a small fake upstream that counts requests per API key: a budget of one key
 * is never exceeded fleet-wide under 200 concurrent requests, and a 429 one node hears for a key takes that key out of
 * rotation on every node within one heartbeat.
 */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { test } from 'node:test'
import { SERVED_BY } from '../src/cluster/forward.ts'
import { freshPrefix, redisFor, startFleetNginx, startNode, untilMembers, type FleetNode } from './helpers/fleet.ts'
import { NGINX, needs, REDIS_SERVER } from './helpers/servers.ts'

const only = needs(REDIS_SERVER, NGINX)

interface Upstream { url: string; byKey: Map<string, number>; throttled: Set<string> }

/** An Anthropic-shaped upstream: counts requests per x-api-key, answers 429 (retry-after 30) for a throttled key. */
async function fakeUpstream(t: { after(fn: () => unknown): void }): Promise<Upstream> {
  const byKey = new Map<string, number>()
  const throttled = new Set<string>()
  const server: Server = createServer(async (req, res) => {
    let text = ''
    for await (const chunk of req) text += chunk
    const key = String(req.headers['x-api-key'] ?? '')
    byKey.set(key, (byKey.get(key) ?? 0) + 1)
    if (throttled.has(key)) {
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '30' })
      res.end(JSON.stringify({ type: 'error', error: { type: 'rate_limit_error', message: 'slow down' } }))
      return
    }
    const { model } = JSON.parse(text) as { model: string }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ id: 'msg_fake', type: 'message', role: 'assistant', model, content: [{ type: 'text', text: 'ok' }],
      stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 3, output_tokens: 1 } }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }))
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, byKey, throttled }
}

const httpAccount = (id: string, upstream: string, keyVar: string, extra: Record<string, unknown> = {}) =>
  ({ id, maxConcurrency: 4, session: { kind: 'http', baseUrl: upstream, apiKey: { fromEnv: keyVar } }, ...extra })

const ask = (url: string, prompt: string) => fetch(`${url}/v1/messages`, {
  method: 'POST', headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model: 'claude-test-1', max_tokens: 16, messages: [{ role: 'user', content: prompt }] }),
})

test('(a) a fleet-wide budget of N requests per window is never exceeded under 200 concurrent requests spread by nginx', { ...only, timeout: 60_000 }, async (t) => {
  const N = 37
  const redis = await redisFor(t)
  const upstream = await fakeUpstream(t)
  const keyPrefix = freshPrefix()
  // every account on every node spends the same key, with the key's budget as its quota: one budget, counted once
  const quota = [{ window: '1m', requests: N }]
  const nodes = await Promise.all(['n1', 'n2', 'n3'].map((nodeId) => startNode(t, {
    nodeId, redis: redis.url, keyPrefix, env: { FLEET_SHARED_KEY: 'sk-shared-budget' },
    accounts: ['a', 'b'].map((x) => httpAccount(`${nodeId}-${x}`, upstream.url, 'FLEET_SHARED_KEY', { quota })),
  })))
  await untilMembers(nodes, 3)
  const nginx = await startFleetNginx(t, nodes.map((n) => n.port))

  const answers = await Promise.all(Array.from({ length: 200 }, async (_, i) => {
    const res = await ask(nginx.url, `request ${i}`)
    const json = (await res.json()) as { type: string; error?: { type: string } }
    return { status: res.status, type: json.error?.type ?? json.type }
  }))
  const served = answers.filter((a) => a.status === 200).length
  const refused = answers.filter((a) => a.status === 429 && a.type === 'rate_limit_error').length
  assert.equal(served + refused, 200, `every request was served or refused for the budget (${JSON.stringify(answers.filter((a) => a.status !== 200 && a.status !== 429))})`)
  assert.ok(served <= N, `at most ${N} served fleet-wide (${served})`)
  assert.equal(upstream.byKey.get('sk-shared-budget'), served, 'the upstream saw exactly the requests served')
  assert.equal(served, N, 'the whole budget was used: nothing refused while it had room')
})

test('(b) a 429 with retry-after on one node\'s account keeps its key out of rotation on every node within one heartbeat', { ...only, timeout: 60_000 }, async (t) => {
  const HEARTBEAT = 500
  const redis = await redisFor(t)
  const upstream = await fakeUpstream(t)
  const keyPrefix = freshPrefix()
  const env = { FLEET_HOT_KEY: 'sk-hot', FLEET_COLD_KEY: 'sk-cold' }
  const start = (nodeId: string, accounts: unknown[]): Promise<FleetNode> =>
    startNode(t, { nodeId, redis: redis.url, keyPrefix, env, accounts, cluster: { heartbeatMs: HEARTBEAT, nodeTtlMs: 2_000 } })
  const nodes = await Promise.all([
    start('n1', [httpAccount('n1-hot', upstream.url, 'FLEET_HOT_KEY')]),
    start('n2', [httpAccount('n2-hot', upstream.url, 'FLEET_HOT_KEY'), httpAccount('n2-cold', upstream.url, 'FLEET_COLD_KEY')]),
    start('n3', [httpAccount('n3-hot', upstream.url, 'FLEET_HOT_KEY'), httpAccount('n3-cold', upstream.url, 'FLEET_COLD_KEY')]),
  ])
  await untilMembers(nodes, 3)

  upstream.throttled.add('sk-hot')
  const throttled = await ask(nodes[0].url, 'this one is throttled')
  assert.equal(throttled.status, 429)
  assert.equal(throttled.headers.get('x-agyc-account'), 'n1-hot')
  await throttled.text()
  const heardAt = Date.now()
  const cooling = async (node: FleetNode, id: string): Promise<boolean> => {
    const snap = (await (await fetch(`${node.url}/admin/accounts`)).json()) as { accounts: { id: string; health: { outlier: string } }[] }
    return snap.accounts.find((a) => a.id === id)?.health.outlier === 'cooling'
  }
  const seenAfter: number[] = []
  for (const [node, id] of [[nodes[1], 'n2-hot'], [nodes[2], 'n3-hot']] as const) {
    while (!(await cooling(node, id))) {
      assert.ok(Date.now() - heardAt < 5_000, `${id} never cooled`)
      await new Promise((r) => setTimeout(r, 20))
    }
    seenAfter.push(Date.now() - heardAt)
  }
  // one heartbeat, plus the slack of a shared 2-core machine polling two nodes over HTTP
  assert.ok(Math.max(...seenAfter) <= HEARTBEAT + 400, `both nodes cooled the key within one heartbeat (${seenAfter.join(', ')} ms)`)

  const after = await Promise.all([1, 2].flatMap((n) => Array.from({ length: 6 }, async (_, i) => {
    const res = await ask(nodes[n].url, `after ${n}.${i}`)
    const text = await res.text()
    return { status: res.status, account: res.headers.get('x-agyc-account'), node: res.headers.get(SERVED_BY), ...(res.status === 200 ? {} : { text }) }
  })))
  assert.ok(after.every((a) => a.status === 200 && a.account?.endsWith('-cold')), `served by the other key only (${JSON.stringify(after)})`)
  assert.equal(upstream.byKey.get('sk-hot'), 1, 'no node sent the throttled key again')
  // n1's only account is cooling: it has no room, so it forwards to a node that has
  const moved = await ask(nodes[0].url, 'n1 has no account free')
  assert.equal(moved.status, 200)
  assert.match(moved.headers.get(SERVED_BY) ?? '', /^n[23]$/)
  assert.match(moved.headers.get('x-agyc-account') ?? '', /-cold$/)
  await moved.text()
})
