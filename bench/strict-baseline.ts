/**
 * The strict yardstick, what a user who benchmarks us against "hello world" compares with: a bare `node:http` server
 * that reads the body, parses it once (`JSON.parse`) and writes bytes built before it listened. Nothing else per
 * request: no id, no text substitution, no token estimate, no `JSON.stringify`, no headers object. Its answers are
 * the mock baseline's (bench/baseline.ts) to the bench's request (bench/request.ts), built once at start, so the
 * bytes on the wire have the same shape and size: the message JSON, or the whole 50-delta SSE stream written in one
 * write, as the orchestrator writes a stream produced in one turn.
 *
 * Run as a process: `node bench/strict-baseline.ts [--port N] [--deltas 50]`; prints `{"port":N}` once listening.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { parseArgs } from 'node:util'
import { SSE_HEADERS } from '../src/formats/anthropic-sse.ts'
import { messageId, mockAnswer } from './baseline.ts'
import { REQUEST } from './request.ts'

// the same lengths as the mock baseline's: a message id of `msg_` + 16 characters, a request id like `req_base1a2b`
const REQUEST_ID = 'req_strict00'

export function createStrictBaseline(deltas = 50): Server {
  const id = messageId()
  const json = Buffer.from(mockAnswer({ ...REQUEST, stream: false }, deltas, id))
  const stream = Buffer.from(mockAnswer({ ...REQUEST, stream: true }, deltas, id))
  // flat [name, value, …] arrays: node writes them as they are, without walking an object per request
  const jsonHead = ['content-type', 'application/json', 'content-length', String(json.length), 'request-id', REQUEST_ID]
  const streamHead = [...Object.entries(SSE_HEADERS).flat(), 'request-id', REQUEST_ID]
  return createServer((req, res) => {
    if (req.method === 'HEAD' || req.method === 'GET') {
      res.end()
      return
    }
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      let request: { stream?: unknown }
      try {
        request = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { stream?: unknown }
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' })
        res.end('{"type":"error","error":{"type":"invalid_request_error","message":"bad json"}}')
        return
      }
      if (request.stream === true) {
        // chunked, as the mock baseline and the orchestrator send a stream
        res.writeHead(200, streamHead)
        res.write(stream)
        res.end()
        return
      }
      res.writeHead(200, jsonHead)
      res.end(json)
    })
  })
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, deltas: { type: 'string', default: '50' } } })
  const server = createStrictBaseline(Number(values.deltas))
  server.keepAliveTimeout = 65_000
  server.listen(Number(values.port), '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`)
  })
  process.on('SIGTERM', () => server.close(() => process.exit(0)))
}
