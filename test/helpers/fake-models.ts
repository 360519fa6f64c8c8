/**
 * A fake model server for the real agent CLIs (docs/agent-clis.md, last section): one node:http server on 127.0.0.1 that
 * answers Claude Code (`POST /v1/messages`, SSE or JSON), Gemini CLI (`POST /v1beta/models/M:streamGenerateContent`)
 * and Codex (`POST /v1/responses`). It records every request, and fails the requests of one API key on demand (429
 * with each provider's own error body), so a test can aim a rate limit at exactly one account.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Recorded {
  method: string
  path: string
  /** the key the CLI sent (x-api-key, x-goog-api-key or Bearer) */
  key: string
  body: any
}

export interface Failure {
  status: number
  retryAfterS?: number
  /** Codex: answer `usage_limit_reached` with `resets_in_seconds` (a quota with a reset time) */
  quotaResetS?: number
}

export interface FakeModels {
  url: string
  requests: Recorded[]
  /** requests carrying this key fail until deleted */
  failing: Map<string, Failure>
  /** the answer's text, cut into deltas */
  deltas: string[]
  usage: { input: number; output: number }
  /** model calls wait this long before answering (a slow model, for cancellation) */
  holdMs: number
  /** paths of model calls whose client hung up before the answer (a CLI that stopped its call) */
  abandoned: string[]
  close(): Promise<void>
}

const sse = (res: ServerResponse, event: string | undefined, data: unknown): void => {
  res.write(`${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`)
}

function keyOf(req: IncomingMessage): string {
  const h = req.headers
  const bearer = typeof h.authorization === 'string' ? h.authorization.replace(/^Bearer /, '') : ''
  return String(h['x-api-key'] ?? h['x-goog-api-key'] ?? bearer)
}

export async function startFakeModels(): Promise<FakeModels> {
  const state: Omit<FakeModels, 'url' | 'close'> = {
    requests: [], failing: new Map(), deltas: ['Hello', ' from the', ' fake model.'], usage: { input: 101, output: 7 }, holdMs: 0, abandoned: [],
  }

  const claude = (res: ServerResponse, body: any): void => {
    const { input, output } = state.usage
    const text = state.deltas.join('')
    // a prompt with "[[tool]]": the model calls a tool first (each CLI's own: Glob, glob, exec_command "ls"); the call
    // carrying the tool's result is answered as usual
    const messages = JSON.stringify(body?.messages ?? [])
    if (messages.includes('[[tool]]') && !messages.includes('"tool_result"')) return claudeToolCall(res, body)
    if (!body?.stream) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
        id: 'msg_fake', type: 'message', role: 'assistant', model: body?.model ?? 'fake', content: [{ type: 'text', text }],
        stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: input, output_tokens: output },
      }))
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    sse(res, 'message_start', { type: 'message_start', message: {
      id: 'msg_fake', type: 'message', role: 'assistant', model: body.model, content: [], stop_reason: null, stop_sequence: null,
      usage: { input_tokens: input, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    } })
    sse(res, 'content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } })
    for (const d of state.deltas) sse(res, 'content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: d } })
    sse(res, 'content_block_stop', { type: 'content_block_stop', index: 0 })
    sse(res, 'message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: output } })
    sse(res, 'message_stop', { type: 'message_stop' })
    res.end()
  }

  const claudeToolCall = (res: ServerResponse, body: any): void => {
    const call = { type: 'tool_use', id: 'toolu_fake', name: 'Glob', input: { pattern: '*.md' } }
    const usage = { input_tokens: state.usage.input, output_tokens: state.usage.output }
    if (!body?.stream) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
        id: 'msg_fake_tool', type: 'message', role: 'assistant', model: body?.model ?? 'fake', content: [call], stop_reason: 'tool_use', stop_sequence: null, usage,
      }))
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    sse(res, 'message_start', { type: 'message_start', message: {
      id: 'msg_fake_tool', type: 'message', role: 'assistant', model: body.model, content: [], stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 },
    } })
    sse(res, 'content_block_start', { type: 'content_block_start', index: 0, content_block: { ...call, input: {} } })
    sse(res, 'content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: JSON.stringify(call.input) } })
    sse(res, 'content_block_stop', { type: 'content_block_stop', index: 0 })
    sse(res, 'message_delta', { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: usage.output_tokens } })
    sse(res, 'message_stop', { type: 'message_stop' })
    res.end()
  }
  const gemini = (res: ServerResponse, streamed: boolean, body: any): void => {
    const { input, output } = state.usage
    const usageMetadata = { promptTokenCount: input, candidatesTokenCount: output, totalTokenCount: input + output }
    const contents = JSON.stringify(body?.contents ?? [])
    if (contents.includes('[[tool]]') && !contents.includes('functionResponse')) {
      const call = { candidates: [{ content: { role: 'model', parts: [{ functionCall: { name: 'glob', args: { pattern: '*.md' } } }] }, finishReason: 'STOP', index: 0 }], usageMetadata }
      if (!streamed) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(call))
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      sse(res, undefined, call)
      return void res.end()
    }
    if (!streamed) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
        candidates: [{ content: { role: 'model', parts: [{ text: state.deltas.join('') }] }, finishReason: 'STOP', index: 0 }], usageMetadata,
      }))
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    state.deltas.forEach((text, i) => {
      const last = i === state.deltas.length - 1
      sse(res, undefined, {
        candidates: [{ content: { role: 'model', parts: [{ text }] }, index: 0, ...(last ? { finishReason: 'STOP' } : {}) }],
        ...(last ? { usageMetadata } : {}),
      })
    })
    res.end()
  }

  const codex = (res: ServerResponse, body: any): void => {
    const { input, output } = state.usage
    const text = state.deltas.join('')
    const asked = JSON.stringify(body?.input ?? [])
    if (asked.includes('[[tool]]') && !asked.includes('function_call_output')) {
      const call = { id: 'fc_fake', type: 'function_call', status: 'completed', call_id: 'call_fake', name: 'exec_command', arguments: JSON.stringify({ cmd: 'ls' }) }
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      sse(res, 'response.created', { type: 'response.created', response: { id: 'resp_fake_tool', model: body?.model } })
      sse(res, 'response.output_item.added', { type: 'response.output_item.added', output_index: 0, item: { ...call, status: 'in_progress', arguments: '' } })
      sse(res, 'response.output_item.done', { type: 'response.output_item.done', output_index: 0, item: call })
      sse(res, 'response.completed', { type: 'response.completed', response: {
        id: 'resp_fake_tool', model: body?.model, status: 'completed',
        usage: { input_tokens: input, input_tokens_details: { cached_tokens: 0 }, output_tokens: output, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: input + output },
      } })
      return void res.end()
    }
    const item = { id: 'msg_fake', type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text, annotations: [] }] }
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    sse(res, 'response.created', { type: 'response.created', response: { id: 'resp_fake', model: body?.model } })
    sse(res, 'response.output_item.added', { type: 'response.output_item.added', output_index: 0, item: { ...item, status: 'in_progress', content: [] } })
    for (const d of state.deltas) sse(res, 'response.output_text.delta', { type: 'response.output_text.delta', item_id: 'msg_fake', output_index: 0, content_index: 0, delta: d })
    sse(res, 'response.output_item.done', { type: 'response.output_item.done', output_index: 0, item })
    sse(res, 'response.completed', { type: 'response.completed', response: {
      id: 'resp_fake', model: body?.model, status: 'completed',
      usage: { input_tokens: input, input_tokens_details: { cached_tokens: 0 }, output_tokens: output, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: input + output },
    } })
    res.end()
  }

  /** each provider's own error body, as its CLI expects to read it */
  const fail = (res: ServerResponse, provider: 'claude' | 'gemini' | 'codex', failure: Failure): void => {
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (failure.retryAfterS !== undefined) headers['retry-after'] = String(failure.retryAfterS)
    if (provider === 'claude' && failure.quotaResetS !== undefined) {
      // a subscription's usage limit, as the Anthropic API reports it to Claude Code
      headers['anthropic-ratelimit-unified-status'] = 'rejected'
      headers['anthropic-ratelimit-unified-reset'] = String(Math.floor(Date.now() / 1000) + failure.quotaResetS)
    }
    let body: unknown
    if (provider === 'claude') {
      body = { type: 'error', error: { type: failure.status === 429 ? 'rate_limit_error' : failure.status === 401 ? 'authentication_error' : 'api_error', message: `fake ${failure.status}` } }
    } else if (provider === 'gemini') {
      body = { error: { code: failure.status, message: `fake ${failure.status}`, status: failure.status === 429 ? 'RESOURCE_EXHAUSTED' : 'UNAUTHENTICATED',
        details: failure.retryAfterS === undefined ? [] : [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${failure.retryAfterS}s` }] } }
    } else if (failure.quotaResetS !== undefined) {
      body = { error: { type: 'usage_limit_reached', message: 'fake usage limit', plan_type: 'plus', resets_in_seconds: failure.quotaResetS, resets_at: Math.floor(Date.now() / 1000) + failure.quotaResetS } }
    } else {
      body = { error: { message: `fake ${failure.status}`, type: failure.status === 429 ? 'rate_limit_exceeded' : 'invalid_request_error', code: null } }
    }
    res.writeHead(failure.status, headers).end(JSON.stringify(body))
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString()
      let body: any
      try { body = raw ? JSON.parse(raw) : undefined } catch { body = raw }
      const path = req.url ?? '/'
      const key = keyOf(req)
      state.requests.push({ method: req.method ?? '', path, key, body })
      if (req.method !== 'POST') return void res.writeHead(200).end() // Claude Code's HEAD / probe
      const provider = path.startsWith('/v1/messages') ? 'claude' : path.startsWith('/v1beta/models/') ? 'gemini' : path.startsWith('/v1/responses') ? 'codex' : undefined
      if (!provider) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}')
      res.on('close', () => { if (!res.writableEnded) state.abandoned.push(path) })
      const answer = (): void => {
        if (res.destroyed) return
        const failure = state.failing.get(key)
        if (failure) return fail(res, provider, failure)
        if (provider === 'claude') claude(res, body)
        else if (provider === 'gemini') gemini(res, path.includes(':streamGenerateContent'), body)
        else codex(res, body)
      }
      if (state.holdMs > 0) setTimeout(answer, state.holdMs)
      else answer()
    })
  })
  server.keepAliveTimeout = 1_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  // one object shared with the handlers: tests change `failing`, `deltas` and `usage` in place
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }),
  })
}
