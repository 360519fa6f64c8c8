/**
 * A scripted fake model for the tool-bridge tests: Codex's `POST /v1/responses` and Gemini's
 * `POST /v1beta/models/M:streamGenerateContent` (and `:generateContent`), on 127.0.0.1. Each model call is answered by
 * the test's `script`, which sees the call's body and says: these text deltas, and/or these function calls. It records
 * every call, so a test can check which tools the CLI offered and what it sent back after a call.
 */
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Reply {
  text?: string[]
  calls?: { name: string; args: Record<string, unknown> }[]
  /** answer only after this long (a slow model, to cancel a turn under way) */
  delayMs?: number
}

export interface ModelCall {
  provider: 'codex' | 'gemini'
  path: string
  body: any
  at: number
}

export interface FakeToolModel {
  url: string
  calls: ModelCall[]
  /** model calls whose client hung up before the answer (a CLI that stopped its turn) */
  abandoned: ModelCall[]
  script: (call: ModelCall) => Reply
  close(): Promise<void>
}

const sse = (res: ServerResponse, event: string | undefined, data: unknown): void => {
  res.write(`${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`)
}

/** the names of the tools a model call offered, whatever the provider */
export function offeredTools(call: ModelCall): string[] {
  if (call.provider === 'codex') return (call.body?.tools ?? []).map((t: { name?: string; type?: string }) => t.name ?? t.type)
  return (call.body?.tools ?? []).flatMap((t: { functionDeclarations?: { name: string }[] }) => (t.functionDeclarations ?? []).map((f) => f.name))
}

export async function startFakeToolModel(script: FakeToolModel['script']): Promise<FakeToolModel> {
  const state = { calls: [] as ModelCall[], abandoned: [] as ModelCall[], script }
  let n = 0

  const codex = (res: ServerResponse, body: any, reply: Reply): void => {
    const id = `resp_${++n}`
    const usage = { input_tokens: 100, input_tokens_details: { cached_tokens: 0 }, output_tokens: 10, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 110 }
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    sse(res, 'response.created', { type: 'response.created', response: { id, model: body?.model } })
    let index = 0
    if (reply.text?.length) {
      const item = { id: `msg_${n}`, type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: reply.text.join(''), annotations: [] }] }
      sse(res, 'response.output_item.added', { type: 'response.output_item.added', output_index: index, item: { ...item, status: 'in_progress', content: [] } })
      for (const d of reply.text) sse(res, 'response.output_text.delta', { type: 'response.output_text.delta', item_id: item.id, output_index: index, content_index: 0, delta: d })
      sse(res, 'response.output_item.done', { type: 'response.output_item.done', output_index: index, item })
      index++
    }
    for (const [i, c] of (reply.calls ?? []).entries()) {
      const call = { id: `fc_${n}_${i}`, type: 'function_call', status: 'completed', call_id: `call_${n}_${i}`, name: c.name, arguments: JSON.stringify(c.args) }
      sse(res, 'response.output_item.added', { type: 'response.output_item.added', output_index: index, item: { ...call, status: 'in_progress', arguments: '' } })
      sse(res, 'response.output_item.done', { type: 'response.output_item.done', output_index: index, item: call })
      index++
    }
    sse(res, 'response.completed', { type: 'response.completed', response: { id, model: body?.model, status: 'completed', usage } })
    res.end()
  }

  const gemini = (res: ServerResponse, streamed: boolean, reply: Reply): void => {
    const usageMetadata = { promptTokenCount: 100, candidatesTokenCount: 10, totalTokenCount: 110 }
    const chunks: object[][] = (reply.text ?? []).map((text) => [{ text }])
    const calls = (reply.calls ?? []).map((c) => ({ functionCall: { name: c.name, args: c.args } }))
    if (calls.length > 0) chunks.push(calls)
    if (chunks.length === 0) chunks.push([{ text: '' }])
    const candidate = (parts: object[], last: boolean) => ({
      candidates: [{ content: { role: 'model', parts }, index: 0, ...(last ? { finishReason: 'STOP' } : {}) }], ...(last ? { usageMetadata } : {}),
    })
    if (!streamed) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(candidate(chunks.flat(), true)))
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    chunks.forEach((parts, i) => sse(res, undefined, candidate(parts, i === chunks.length - 1)))
    res.end()
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const path = req.url ?? '/'
      let body: any
      try { body = JSON.parse(Buffer.concat(chunks).toString() || 'null') } catch { body = undefined }
      const provider = path.startsWith('/v1/responses') ? 'codex' : path.startsWith('/v1beta/models/') ? 'gemini' : undefined
      if (req.method !== 'POST' || !provider) return void res.writeHead(404).end()
      const call: ModelCall = { provider, path, body, at: Date.now() }
      state.calls.push(call)
      let reply: Reply
      try {
        reply = state.script(call)
      } catch (err) {
        return void res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: String(err) } }))
      }
      res.on('close', () => { if (!res.writableEnded) state.abandoned.push(call) })
      const answer = (): void => {
        if (res.destroyed) return
        if (provider === 'codex') codex(res, body, reply)
        else gemini(res, path.includes(':streamGenerateContent'), reply)
      }
      if (reply.delayMs) setTimeout(answer, reply.delayMs)
      else answer()
    })
  })
  server.keepAliveTimeout = 1_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }),
  })
}
