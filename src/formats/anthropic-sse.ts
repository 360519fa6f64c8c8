/**
 * Anthropic SSE framing, shared by the worker (which frames its own answers, so the main thread only copies bytes)
 * and the main thread (which frames pings and errors it raises itself). The event order is the API's:
 * message_start, content_block_start, ping, content_block_delta…, content_block_stop, message_delta, message_stop.
 */
import type { AnthropicErrorType } from '../errors.ts'

/** no `connection` header: node writes its own, `close` when the client asked for it (a stream honours it) */
export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
} as const

export const frame = (event: string, data: unknown): string => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`

export const PING = 'event: ping\ndata: {"type": "ping"}\n\n'

export function messageStart(id: string, model: string, inputTokens: number): string {
  return frame('message_start', {
    type: 'message_start',
    message: {
      id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null,
      usage: { input_tokens: inputTokens, output_tokens: 0 },
    },
  })
}

export const textBlockStart = (index: number): string =>
  frame('content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } })

export const textDelta = (index: number, text: string): string =>
  frame('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text } })

export const toolUseStart = (index: number, id: string, name: string): string =>
  frame('content_block_start', { type: 'content_block_start', index, content_block: { type: 'tool_use', id, name, input: {} } })

export const inputJsonDelta = (index: number, partialJson: string): string =>
  frame('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: partialJson } })

export const blockStop = (index: number): string => frame('content_block_stop', { type: 'content_block_stop', index })

export const messageDelta = (stopReason: string, stopSequence: string | null, usage: object): string =>
  frame('message_delta', { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: stopSequence }, usage })

export const MESSAGE_STOP = 'event: message_stop\ndata: {"type":"message_stop"}\n\n'

export const errorEvent = (type: AnthropicErrorType, message: string): string =>
  frame('error', { type: 'error', error: { type, message } })
