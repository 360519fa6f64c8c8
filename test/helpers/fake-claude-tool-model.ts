/**
 * A scripted fake Anthropic Messages API for the Claude Code tool-bridge tests (`POST /v1/messages`, streamed), on
 * 127.0.0.1. Each model call is answered by the test's `script`, which sees the call's body and says: these text
 * deltas, and/or these tool calls (`tool_use` blocks, ids `toolu_fake_<n>_<i>`). It records every call, so a test
 * can check which tools and system prompt the CLI sent and what came back after a call.
 */
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Reply {
  text?: string[]
  calls?: { name: string; input: Record<string, unknown> }[]
  /** answer only after this long (a slow model, to cancel a turn under way) */
  delayMs?: number
  /** answer with this API error instead */
  error?: { status: number; type: string; message: string }
}

export interface ModelCall {
  path: string
  body: any
  at: number
  /** the ids of the tool_use blocks it was answered with, in order */
  toolUseIds: string[]
}

export interface FakeClaudeModel {
  url: string
  calls: ModelCall[]
  /** model calls whose client hung up before the answer (a CLI that stopped its turn) */
  abandoned: ModelCall[]
  script: (call: ModelCall) => Reply
  close(): Promise<void>
}

/** the tool_result blocks of a call's last user message */
export function toolResults(call: ModelCall): { tool_use_id: string; content?: unknown; is_error?: boolean }[] {
  const last = call.body?.messages?.at(-1)
  return Array.isArray(last?.content) ? last.content.filter((b: { type?: string }) => b.type === 'tool_result') : []
}

/** the system prompt of a call, as one string */
export function systemText(call: ModelCall): string {
  const system = call.body?.system
  return typeof system === 'string' ? system : (system ?? []).map((b: { text?: string }) => b.text ?? '').join('\n')
}

const sse = (res: ServerResponse, data: { type: string; [key: string]: unknown }): void => {
  res.write(`event: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`)
}

export async function startFakeClaudeModel(script: FakeClaudeModel['script']): Promise<FakeClaudeModel> {
  const state = { calls: [] as ModelCall[], abandoned: [] as ModelCall[], script }
  let n = 0

  const answer = (res: ServerResponse, call: ModelCall, reply: Reply): void => {
    const body = call.body
    const id = `msg_fake_${++n}`
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    sse(res, { type: 'message_start', message: {
      id, type: 'message', role: 'assistant', model: body?.model, content: [], stop_reason: null, stop_sequence: null,
      usage: { input_tokens: 100, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    } })
    let index = 0
    if (reply.text?.length) {
      sse(res, { type: 'content_block_start', index, content_block: { type: 'text', text: '' } })
      for (const text of reply.text) sse(res, { type: 'content_block_delta', index, delta: { type: 'text_delta', text } })
      sse(res, { type: 'content_block_stop', index })
      index++
    }
    for (const [i, tool] of (reply.calls ?? []).entries()) {
      const toolUseId = `toolu_fake_${n}_${i}`
      call.toolUseIds.push(toolUseId)
      sse(res, { type: 'content_block_start', index, content_block: { type: 'tool_use', id: toolUseId, name: tool.name, input: {} } })
      sse(res, { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: JSON.stringify(tool.input) } })
      sse(res, { type: 'content_block_stop', index })
      index++
    }
    const stop = reply.calls?.length ? 'tool_use' : 'end_turn'
    sse(res, { type: 'message_delta', delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: 10 } })
    sse(res, { type: 'message_stop' })
    res.end()
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const path = req.url ?? '/'
      // the CLI's connectivity probe (HEAD /): any answer does
      if (req.method !== 'POST') return void res.writeHead(200).end()
      if (!path.startsWith('/v1/messages')) return void res.writeHead(404).end()
      let body: any
      try { body = JSON.parse(Buffer.concat(chunks).toString() || 'null') } catch { body = undefined }
      const call: ModelCall = { path, body, at: Date.now(), toolUseIds: [] }
      state.calls.push(call)
      let reply: Reply
      try {
        reply = state.script(call)
      } catch (err) {
        return void res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ type: 'error', error: { type: 'api_error', message: String(err) } }))
      }
      const go = (): void => {
        if (res.destroyed) return
        if (!reply.error) return answer(res, call, reply)
        const { status, type, message } = reply.error
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ type: 'error', error: { type, message } }))
      }
      const timer = reply.delayMs ? setTimeout(go, reply.delayMs) : undefined
      res.on('close', () => {
        clearTimeout(timer)
        if (!res.writableEnded) state.abandoned.push(call)
      })
      if (!timer) go()
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
