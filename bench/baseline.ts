/**
 * The benchmark's "mock baseline" yardstick: a bare `node:http` server doing the work the mock session does for one
 * request, and nothing else: read the body, parse it once, answer the same Anthropic message (or the same 50-delta
 * SSE stream, written once, as the orchestrator writes a stream produced in one turn). It is also the upstream of the
 * proxy arms. Its stricter sibling, bench/strict-baseline.ts, builds that answer once and replays its bytes.
 *
 * Run as a process: `node bench/baseline.ts [--port N] [--deltas 50]`; prints `{"port":N}` once listening.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { parseArgs } from 'node:util'
import { Session, type SessionConfig } from '../src/config/schema.ts'
import * as sse from '../src/formats/anthropic-sse.ts'
import { estimateInputTokens, estimateTokens, lastUserText, type MessagesRequest } from '../src/protocol/anthropic.ts'
import { cut } from '../workers/sessions/mock.ts'

// the mock session's own default text, so both sides answer byte-for-byte the same amount
const mock = Session.parse({ kind: 'mock' }) as Extract<SessionConfig, { kind: 'mock' }>
const ACCOUNT = 'acc01'

let served = 0

/**
 * The mock session's answer to `request`, framed as the orchestrator frames it: the message's JSON, or (for
 * `stream: true`) the whole SSE stream of `deltas` text deltas. The strict baseline calls it once, at start.
 */
export function mockAnswer(request: MessagesRequest, deltas: number, id: string): string {
  const model = request.model ?? 'unknown'
  const prompt = lastUserText(request)
  const text = mock.text.replaceAll('{account}', ACCOUNT).replaceAll('{model}', model).replaceAll('{prompt}', prompt)
  const usage = { input_tokens: estimateInputTokens(request), output_tokens: estimateTokens(text) }
  if (request.stream === true) {
    let out = sse.messageStart(id, model, usage.input_tokens) + sse.textBlockStart(0) + sse.PING
    for (const piece of cut(text, deltas)) out += sse.textDelta(0, piece)
    return out + sse.blockStop(0) + sse.messageDelta('end_turn', null, usage) + sse.MESSAGE_STOP
  }
  return JSON.stringify({
    id, type: 'message', role: 'assistant', model, content: [{ type: 'text', text }],
    stop_reason: 'end_turn', stop_sequence: null, usage, metadata: { account_id: ACCOUNT },
  })
}

/** a message id as the orchestrator makes one: `msg_` and 16 characters */
export const messageId = (): string => `msg_${randomBytes(12).toString('base64url')}`

function answer(req: IncomingMessage, res: ServerResponse, body: string, deltas: number): void {
  let request: MessagesRequest
  try {
    request = JSON.parse(body) as MessagesRequest
  } catch {
    res.writeHead(400, { 'content-type': 'application/json' })
    res.end('{"type":"error","error":{"type":"invalid_request_error","message":"bad json"}}')
    return
  }
  const requestId = `req_base${(++served).toString(36)}`
  const out = mockAnswer(request, deltas, messageId())
  if (request.stream === true) {
    res.writeHead(200, { ...sse.SSE_HEADERS, 'request-id': requestId })
    res.write(out)
    res.end()
    return
  }
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out), 'request-id': requestId })
  res.end(out)
}

export function createBaseline(deltas = 50): Server {
  return createServer((req, res) => {
    if (req.method === 'HEAD' || req.method === 'GET') {
      res.end()
      return
    }
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => answer(req, res, Buffer.concat(chunks).toString('utf8'), deltas))
  })
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, deltas: { type: 'string', default: '50' } } })
  const server = createBaseline(Number(values.deltas))
  server.keepAliveTimeout = 65_000
  server.listen(Number(values.port), '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`)
  })
  process.on('SIGTERM', () => server.close(() => process.exit(0)))
}
