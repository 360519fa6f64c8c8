/**
 * Any node takes any request (issue 17): three orchestrator processes on one redis-server behind nginx (started from
 * docs/nginx.conf), mock accounts named after their node. A conversation spread over the nodes by nginx is served by
 * one account every turn; a tool_result continuation goes to the node holding the pending call; a request claiming to
 * come from another node without the fleet's signature is refused.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import Anthropic from '@anthropic-ai/sdk'
import { signRequest } from '../src/cluster/auth.ts'
import { Directory } from '../src/cluster/directory.ts'
import { SERVED_BY } from '../src/cluster/forward.ts'
import { storesFor } from './helpers/cluster.ts'
import { freshPrefix, mockAccountsOf, redisFor, SECRET, startFleetNginx, startNode, untilMembers } from './helpers/fleet.ts'
import { NGINX, needs, REDIS_SERVER } from './helpers/servers.ts'
import { runAgyc } from './helpers/process.ts'

const only = needs(REDIS_SERVER, NGINX)

const body = (messages: unknown[]): string => JSON.stringify({ model: 'claude-test-1', max_tokens: 64, messages })

test('three nodes behind nginx route by the fleet\'s directories', { ...only, timeout: 60_000 }, async (t) => {
  const redis = await redisFor(t)
  const keyPrefix = freshPrefix()
  const nodes = await Promise.all(['n1', 'n2', 'n3'].map((nodeId) =>
    startNode(t, { nodeId, redis: redis.url, keyPrefix, accounts: mockAccountsOf(nodeId, 2, { text: '{account} says {prompt}' }) })))
  await untilMembers(nodes, 3)
  const nginx = await startFleetNginx(t, nodes.map((n) => n.port))

  await t.test('(c) a 5-turn conversation whose turns nginx spreads over all three nodes is served by one account every turn', async () => {
    const client = new Anthropic({ baseURL: nginx.url, apiKey: 'test', maxRetries: 0 })
    const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'turn 1 of a conversation about fleets' }]
    const accounts: string[] = []
    const forwardedFrom: (string | null)[] = []
    for (let turn = 1; turn <= 5; turn++) {
      const { data, response } = await client.messages.create({ model: 'claude-test-1', max_tokens: 64, messages }).withResponse()
      accounts.push(response.headers.get('x-agyc-account') ?? '?')
      forwardedFrom.push(response.headers.get(SERVED_BY))
      messages.push({ role: 'assistant', content: data.content }, { role: 'user', content: `turn ${turn + 1}` })
    }
    assert.equal(new Set(accounts).size, 1, `one account served every turn (got ${accounts.join(', ')})`)
    // least_conn with nothing else in flight spreads sequential requests over the nodes: turns landed elsewhere and
    // were forwarded home
    assert.ok(forwardedFrom.filter((n) => n !== null).length >= 2, `turns were forwarded home (${forwardedFrom.join(', ')})`)
  })

  await t.test('(c) a named session (Claude Code\'s session header) follows its home from its first turn', async () => {
    const headers = { 'content-type': 'application/json', 'x-claude-code-session-id': `s-${Date.now()}` }
    const served = new Set<string>()
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${nodes[i % 3].url}/v1/messages`, { method: 'POST', headers, body: body([{ role: 'user', content: `q${i}` }]) })
      assert.equal(res.status, 200)
      served.add(res.headers.get('x-agyc-account')!)
      await res.text()
    }
    assert.equal(served.size, 1, `asked on every node, served by one account (${[...served].join(', ')})`)
  })

  await t.test('(d) a tool_result continuation landing on n1 is forwarded to n3, which holds the pending call', async (t) => {
    // A stand-in for a CLI parked on a tool call on n3: the entry n3 writes when its tool bridge parks a call
    // (Dispatcher.toolCalls → the fleet's directory, src/cluster/node.ts), written here directly; the mock accounts
    // park nothing.
    const [store] = await storesFor(t, redis.url, 1, { keyPrefix })
    const directory = new Directory(store, { kind: 'toolCall', ttlMs: 60_000, renewOnRead: false })
    await directory.set('toolu_standin_1', { nodeId: 'n3', accountId: 'n3-b' })
    const continuation = body([
      { role: 'user', content: 'what is the weather in Paris?' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_standin_1', name: 'get_weather', input: { city: 'Paris' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_standin_1', content: '18 °C' }] },
    ])
    const res = await fetch(`${nodes[0].url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: continuation })
    assert.equal(res.status, 200, await res.clone().text())
    assert.equal(res.headers.get(SERVED_BY), 'n3', 'n1 forwarded it to n3')
    assert.match(res.headers.get('x-agyc-account') ?? '', /^n3-/, 'an account of n3 answered')
    await res.text()
    // a stand-in pointing at a node that is not in the fleet is ignored: served where it landed (another conversation:
    // the one above now has its home on n3)
    await directory.set('toolu_standin_2', { nodeId: 'gone', accountId: 'gone-a' })
    const orphan = await fetch(`${nodes[1].url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: continuation.replaceAll('toolu_standin_1', 'toolu_standin_2').replace('Paris?', 'Lyon?') })
    assert.equal(orphan.status, 200)
    assert.equal(orphan.headers.get(SERVED_BY), null)
    assert.match(orphan.headers.get('x-agyc-account') ?? '', /^n2-/)
    await orphan.text()
  })

  await t.test('(g) a request claiming to be forwarded without the fleet\'s signature is refused, in the error shape', async () => {
    const send = (headers: Record<string, string>) => fetch(`${nodes[1].url}/v1/messages`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: body([{ role: 'user', content: 'hi' }]),
    })
    const wrongSecret = signRequest('another-fleet-secret-0123456789abcdefghij', 'n9', { method: 'POST', path: '/v1/messages' })
    const forged = await send(wrongSecret)
    assert.equal(forged.status, 403, 'a node with the wrong secret is refused')
    assert.deepEqual(Object.keys(((await forged.json()) as { error: object }).error), ['type', 'message'])
    const unsigned = await send({ 'x-agyc-cluster-node': 'n1' })
    assert.equal(unsigned.status, 401, 'a claim without a signature is refused')
    assert.equal(((await unsigned.json()) as { error: { type: string } }).error.type, 'authentication_error')
    const stale = await send(signRequest(SECRET, 'n1', { method: 'POST', path: '/v1/messages' }, Date.now() - 10 * 60_000))
    assert.equal(stale.status, 403, 'a replayed (stale) signature is refused')
    await stale.text()
    const good = await send(signRequest(SECRET, 'n1', { method: 'POST', path: '/v1/messages' }))
    assert.equal(good.status, 200, 'the right secret is served')
    assert.match(good.headers.get('x-agyc-account') ?? '', /^n2-/, 'served where it was sent, never forwarded again')
    await good.text()
  })

  await t.test('the OpenAI chat door forwards the same way: the client\'s own body to the same door on the home node', async () => {
    const chat = (messages: unknown[], url: string, headers: Record<string, string> = {}) => fetch(`${url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ model: 'claude-test-1', max_tokens: 32, messages }),
    })
    const first = await chat([{ role: 'user', content: 'an OpenAI client asks' }], nodes[2].url)
    assert.equal(first.status, 200)
    const account = first.headers.get('x-agyc-account')!
    const answer = (await first.json()) as { object: string; choices: { message: { content: string } }[] }
    assert.equal(answer.object, 'chat.completion')
    const next = await chat([{ role: 'user', content: 'an OpenAI client asks' }, { role: 'assistant', content: answer.choices[0].message.content },
      { role: 'user', content: 'and asks again' }], nodes[0].url)
    assert.equal(next.status, 200)
    assert.equal(next.headers.get(SERVED_BY), 'n3', 'n1 forwarded the follow-up home')
    assert.equal(next.headers.get('x-agyc-account'), account)
    assert.equal(((await next.json()) as { object: string }).object, 'chat.completion')
    const forged = await chat([{ role: 'user', content: 'hi' }], nodes[0].url,
      signRequest('another-fleet-secret-0123456789abcdefghij', 'n9', { method: 'POST', path: '/v1/chat/completions' }))
    assert.equal(forged.status, 403)
    assert.equal(typeof ((await forged.json()) as { error: { message: string } }).error.message, 'string', 'refused in OpenAI\'s error shape')
  })

  await t.test('clients leaving forwarded requests at any moment leave the forwarding node serving', async () => {
    // a client gone just as the peer's answer arrives once ended the forwarding node (an abort error on the answer's
    // body with no listener): 300 forwards, each abandoned after 0–4 ms
    const headers = { 'content-type': 'application/json', 'x-claude-code-session-id': `leaving-${Date.now()}` }
    const ask = (signal?: AbortSignal) => fetch(`${nodes[1].url}/v1/messages`, { method: 'POST', headers, body: body([{ role: 'user', content: 'x' }]), signal })
    const home = await fetch(`${nodes[2].url}/v1/messages`, { method: 'POST', headers, body: body([{ role: 'user', content: 'x' }]) })
    await home.text()
    await Promise.all(Array.from({ length: 300 }, async (_, i) => {
      try {
        const res = await ask(AbortSignal.timeout(i % 5))
        await res.text()
      } catch { /* abandoned, as meant */ }
    }))
    const after = await ask()
    assert.equal(after.status, 200, 'n2 still serves')
    assert.equal(after.headers.get(SERVED_BY), 'n3')
    await after.text()
    assert.equal(nodes[1].child.exitCode, null, 'n2 is alive')
  })

  await t.test('/admin/cluster lists the nodes, their accounts and who holds which conversation', async () => {
    const status = (await (await fetch(`${nodes[0].url}/admin/cluster?limit=50`)).json()) as {
      state: string; nodes: { nodeId: string; accounts: { id: string }[] }[]; conversations: { entries: { nodeId: string }[] } }
    assert.equal(status.state, 'ok')
    assert.deepEqual(status.nodes.map((n) => n.nodeId).sort(), ['n1', 'n2', 'n3'])
    assert.deepEqual(status.nodes.find((n) => n.nodeId === 'n2')!.accounts.map((a) => a.id), ['n2-a', 'n2-b'])
    assert.ok(status.conversations.entries.length >= 2, 'the conversations above are listed with their home node')
    const cli = await runAgyc(['status', '--cluster', '--url', nodes[1].url])
    assert.equal(cli.code, 0, cli.stderr)
    assert.match(cli.stdout, /^cluster: ok, 3 nodes \(\* this one: n2\)/)
    for (const id of ['n1', 'n2 *', 'n3']) assert.match(cli.stdout, new RegExp(`^${id.replace('*', '\\*')}\\s+http://127\\.0\\.0\\.1:\\d+\\s+[0-2]/2`, 'm'))
    assert.match(cli.stdout, /^n3\s+n3-b\s+\S+\s+\d\/4/m)
    assert.match(cli.stdout, /^pending tool calls: 2/m)
  })
})
