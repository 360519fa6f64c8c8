/**
 * The nginx the fleet tests put in front of their nodes (test/helpers/servers.ts): it spreads requests over every
 * upstream, passes a stream through as it is written (SSE), skips a node that is down, and leaves no process behind.
 */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { test } from 'node:test'
import { needs, NGINX, startNginx } from './helpers/servers.ts'

const only = needs(NGINX)

async function upstream(name: string, onStream?: (write: (s: string) => void, end: () => void) => void): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (req.url === '/stream' && onStream) {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      onStream((s) => res.write(s), () => res.end())
      return
    }
    res.end(name)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, port: (server.address() as { port: number }).port }
}

test('nginx spreads requests over every node, and skips one that is down', only, async (t) => {
  const nodes = await Promise.all(['a', 'b', 'c'].map((n) => upstream(n)))
  t.after(() => { for (const n of nodes) n.server.close() })
  const nginx = await startNginx({ upstreams: nodes.map((n) => n.port), balance: 'round-robin' })
  t.after(() => nginx.stop())
  const served = new Map<string, number>()
  for (let i = 0; i < 30; i++) {
    const name = await (await fetch(`${nginx.url}/x`)).text()
    served.set(name, (served.get(name) ?? 0) + 1)
  }
  assert.deepEqual([...served.entries()].sort(), [['a', 10], ['b', 10], ['c', 10]])
  await new Promise((resolve) => nodes[1].server.close(resolve))
  nodes[1].server.closeAllConnections()
  const after = new Set<string>()
  for (let i = 0; i < 12; i++) {
    const res = await fetch(`${nginx.url}/x`)
    assert.equal(res.status, 200, 'a node that refuses connections is skipped')
    after.add(await res.text())
  }
  assert.deepEqual([...after].sort(), ['a', 'c'])
})

test('an event stream passes through nginx as it is written, not when it ends', only, async (t) => {
  const { promise: released, resolve: release } = Promise.withResolvers<void>()
  const node = await upstream('a', (write, end) => {
    write('event: message_start\ndata: {}\n\n')
    void released.then(() => { write('event: message_stop\ndata: {}\n\n'); end() })
  })
  t.after(() => node.server.close())
  const nginx = await startNginx({ upstreams: [node.port] })
  t.after(() => nginx.stop())
  const res = await fetch(`${nginx.url}/stream`)
  const reader = res.body!.getReader()
  // a buffering proxy would hold the first event until the upstream ends, which here it never does on its own
  const read = await Promise.race([reader.read(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the first event was held back')), 2_000).unref())])
  const first = new TextDecoder().decode(read.value)
  assert.match(first, /message_start/, 'the first event arrived while the upstream still holds the stream open')
  release()
  let rest = ''
  for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value)
  assert.match(rest, /message_stop/)
})

test('stopping nginx leaves no process behind', only, async () => {
  const node = await upstream('a')
  const nginx = await startNginx({ upstreams: [node.port] })
  const pid = nginx.pid
  assert.equal((await fetch(`${nginx.url}/`)).status, 200)
  await nginx.stop()
  node.server.close()
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' })
})
