/**
 * Node's floor for a proxy (issue 18): the least a `node:http` server can do to forward a request with undici, as a
 * yardstick for the `http` session kind that runs in the same language and on the same libraries. Per request: read the
 * body, one `pool.request()` to the upstream with the body and content headers, then status, content headers and body
 * back, streamed as they arrive. No parse, no routing, no logs, no error shape: nginx is C, and this is what Node itself
 * costs.
 *
 * Run as a process: `node bench/node-proxy.ts --upstream http://127.0.0.1:N [--port M]`; prints `{"port":M}`.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'

const { values } = parseArgs({ options: { upstream: { type: 'string' }, port: { type: 'string', default: '0' } } })
if (!values.upstream) throw new Error('--upstream is required')
const pool = new Pool(values.upstream, { connections: 64, pipelining: 1 })
/** request headers an Anthropic upstream reads; hop-by-hop ones stay with their hop */
const FORWARDED = ['content-type', 'anthropic-version', 'anthropic-beta', 'x-api-key', 'authorization']

const server = createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (chunk: Buffer) => chunks.push(chunk))
  req.on('end', () => {
    const headers: Record<string, string> = {}
    for (const name of FORWARDED) {
      const value = req.headers[name]
      if (typeof value === 'string') headers[name] = value
    }
    pool.request({ path: req.url ?? '/', method: req.method as 'POST', headers, body: Buffer.concat(chunks) }).then(
      ({ statusCode, headers: upstream, body }) => {
        const type = upstream['content-type']
        res.writeHead(statusCode, typeof type === 'string' ? { 'content-type': type } : {})
        body.on('data', (chunk: Buffer) => res.write(chunk))
        body.on('end', () => res.end())
        body.on('error', () => res.destroy())
      },
      () => {
        res.writeHead(502)
        res.end()
      },
    )
  })
})
server.keepAliveTimeout = 60_000
server.listen(Number(values.port), '127.0.0.1', () => {
  console.log(JSON.stringify({ port: (server.address() as AddressInfo).port }))
})
