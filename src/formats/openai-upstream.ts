/**
 * The other direction, for an `http` account with `dialect: "openai-chat"` (an OpenAI-compatible upstream: OpenAI,
 * OpenRouter, DeepSeek, a vLLM without its Anthropic route): the Messages request as a Chat Completions request, and
 * the upstream's answer back as an Anthropic message or Anthropic stream events, so that everything after the session
 * (health, usage, the client's framer) sees what an Anthropic upstream would have said. Pure and worker-loadable.
 */
import type { AnthropicUsage } from './openai-chat.ts'
import { frame } from './anthropic-sse.ts'

type Json = Record<string, unknown>
const isObject = (x: unknown): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x)

interface Block { type?: string; text?: string; id?: string; name?: string; input?: unknown; tool_use_id?: string; content?: unknown; is_error?: boolean; source?: Json }

function blocksOf(content: unknown): Block[] {
  return typeof content === 'string' ? [{ type: 'text', text: content }] : Array.isArray(content) ? content as Block[] : []
}

const textOf = (content: unknown): string => blocksOf(content).filter((b) => b.type === 'text').map((b) => b.text ?? '').join('\n')

function imageUrl(source: Json | undefined): string | undefined {
  if (source?.type === 'base64') return `data:${String(source.media_type)};base64,${String(source.data)}`
  if (source?.type === 'url') return String(source.url)
  return undefined
}

/** A Messages request as a Chat Completions request. */
export function messagesToChat(request: Json, model: string, stream: boolean): Json {
  const messages: Json[] = []
  const system = textOf(request.system)
  if (system !== '') messages.push({ role: 'system', content: system })
  for (const turn of (request.messages as { role?: string; content?: unknown }[] | undefined) ?? []) {
    const blocks = blocksOf(turn.content)
    if (turn.role === 'assistant') {
      const text = blocks.filter((b) => b.type === 'text').map((b) => b.text ?? '').join('')
      const calls = blocks.filter((b) => b.type === 'tool_use')
        .map((b) => ({ id: b.id, type: 'function', function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } }))
      messages.push({ role: 'assistant', content: text === '' && calls.length > 0 ? null : text, ...(calls.length > 0 ? { tool_calls: calls } : {}) })
      continue
    }
    // a user turn: its tool results first (each its own `tool` message, answering the calls just before), then the rest
    const parts: Json[] = []
    for (const block of blocks) {
      if (block.type === 'tool_result') {
        messages.push({ role: 'tool', tool_call_id: block.tool_use_id, content: (block.is_error ? 'Error: ' : '') + textOf(block.content) })
      } else if (block.type === 'text') parts.push({ type: 'text', text: block.text ?? '' })
      else if (block.type === 'image') {
        const url = imageUrl(block.source)
        if (url) parts.push({ type: 'image_url', image_url: { url } })
      }
    }
    if (parts.length > 0) messages.push({ role: 'user', content: parts.every((p) => p.type === 'text') ? parts.map((p) => p.text).join('\n') : parts })
  }
  const out: Json = { model, messages, stream }
  if (stream) out.stream_options = { include_usage: true }
  if (typeof request.max_tokens === 'number') out.max_tokens = request.max_tokens
  if (typeof request.temperature === 'number') out.temperature = request.temperature
  if (typeof request.top_p === 'number') out.top_p = request.top_p
  if (Array.isArray(request.stop_sequences) && request.stop_sequences.length > 0) out.stop = request.stop_sequences
  if (Array.isArray(request.tools)) {
    out.tools = (request.tools as Json[]).filter((t) => typeof t.name === 'string' && (t.type === undefined || t.type === 'custom'))
      .map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.input_schema ?? { type: 'object', properties: {} } } }))
  }
  const choice = request.tool_choice as { type?: string; name?: string; disable_parallel_tool_use?: boolean } | undefined
  if (choice?.type === 'auto') out.tool_choice = 'auto'
  else if (choice?.type === 'none') out.tool_choice = 'none'
  else if (choice?.type === 'any') out.tool_choice = 'required'
  else if (choice?.type === 'tool') out.tool_choice = { type: 'function', function: { name: choice.name } }
  if (choice?.disable_parallel_tool_use === true) out.parallel_tool_calls = false
  const userId = (request.metadata as { user_id?: unknown } | undefined)?.user_id
  if (typeof userId === 'string') out.user = userId
  return out
}

/** OpenAI's finish_reason as Anthropic's stop reason. */
export function stopReasonOf(finish: unknown): string {
  switch (finish) {
    case 'tool_calls': case 'function_call': return 'tool_use'
    case 'length': return 'max_tokens'
    case 'content_filter': return 'refusal'
    default: return 'end_turn'
  }
}

/** OpenAI's usage as Anthropic's: cached prompt tokens apart from the fresh ones. */
export function usageOf(usage: unknown): AnthropicUsage & { input_tokens: number; output_tokens: number } {
  const u = isObject(usage) ? usage : {}
  const prompt = typeof u.prompt_tokens === 'number' ? u.prompt_tokens : 0
  const details = isObject(u.prompt_tokens_details) ? u.prompt_tokens_details : {}
  const cached = typeof details.cached_tokens === 'number' ? details.cached_tokens : 0
  return { input_tokens: prompt - cached, output_tokens: typeof u.completion_tokens === 'number' ? u.completion_tokens : 0, cache_read_input_tokens: cached }
}

function parseArgs(text: unknown): unknown {
  if (typeof text !== 'string' || text === '') return {}
  try {
    return JSON.parse(text)
  } catch {
    return { _raw: text } // the model's malformed arguments, kept rather than lost
  }
}

/** A chat.completion as an Anthropic message. */
export function chatToMessage(completion: Json): Json {
  const choice = (Array.isArray(completion.choices) ? completion.choices[0] : undefined) as Json | undefined
  const message = (isObject(choice?.message) ? choice.message : {}) as Json
  const content: Json[] = []
  if (typeof message.content === 'string' && message.content !== '') content.push({ type: 'text', text: message.content })
  for (const call of (Array.isArray(message.tool_calls) ? message.tool_calls : []) as Json[]) {
    const fn = isObject(call.function) ? call.function : {}
    content.push({ type: 'tool_use', id: call.id, name: fn.name, input: parseArgs(fn.arguments) })
  }
  if (content.length === 0) content.push({ type: 'text', text: '' })
  return {
    id: completion.id, type: 'message', role: 'assistant', model: completion.model, content,
    stop_reason: stopReasonOf(choice?.finish_reason), stop_sequence: null, usage: usageOf(completion.usage),
  }
}

/**
 * A Chat Completions stream (its `data:` lines) as Anthropic SSE events: `message_start` before anything else (a tool
 * call first included), text in block 0 while it lasts, each tool call its own `tool_use` block whose arguments
 * stream as `input_json_delta`, a chunk carrying text and a call both kept whole, and at the end the stop reason and
 * the usage (which OpenAI sends in its last chunk).
 */
export class ChatChunksToAnthropic {
  #buffer = ''
  #started = false
  #ended = false
  #block = -1
  #blockKind: 'text' | 'tool' | undefined
  /** OpenAI tool-call index → our block index */
  readonly #calls = new Map<number, number>()
  #finish: unknown
  #usage: AnthropicUsage & { input_tokens: number; output_tokens: number } = { input_tokens: 0, output_tokens: 0 }
  #model = ''
  #id = ''

  /** the Anthropic events that `text` (any piece of the upstream's body) completes */
  push(text: string): string {
    this.#buffer += text
    let out = ''
    let end = this.#buffer.indexOf('\n')
    while (end !== -1) {
      const line = this.#buffer.slice(0, end).trim()
      this.#buffer = this.#buffer.slice(end + 1)
      if (line.startsWith('data:')) out += this.#data(line.slice(5).trim())
      end = this.#buffer.indexOf('\n')
    }
    return out
  }

  /** the upstream's body ended: what is still owed, message_stop included (once) */
  end(): string {
    return this.push('\n') + this.#stop()
  }

  #data(data: string): string {
    if (data === '[DONE]') return this.#stop()
    let chunk: Json
    try {
      chunk = JSON.parse(data) as Json
    } catch {
      return ''
    }
    if (isObject(chunk.error)) {
      return frame('error', { type: 'error', error: { type: 'api_error', message: String(chunk.error.message ?? 'upstream error') } })
    }
    let out = this.#start(chunk)
    if (chunk.usage) this.#usage = usageOf(chunk.usage)
    const choice = (Array.isArray(chunk.choices) ? chunk.choices[0] : undefined) as Json | undefined
    const delta = (isObject(choice?.delta) ? choice.delta : {}) as Json
    if (typeof delta.content === 'string' && delta.content !== '') {
      if (this.#blockKind !== 'text') out += this.#open('text')
      out += frame('content_block_delta', { type: 'content_block_delta', index: this.#block, delta: { type: 'text_delta', text: delta.content } })
    }
    for (const call of (Array.isArray(delta.tool_calls) ? delta.tool_calls : []) as Json[]) {
      const index = typeof call.index === 'number' ? call.index : 0
      const fn = isObject(call.function) ? call.function : {}
      if (!this.#calls.has(index)) {
        out += this.#open('tool', { id: call.id, name: fn.name })
        this.#calls.set(index, this.#block)
      }
      if (typeof fn.arguments === 'string' && fn.arguments !== '') {
        out += frame('content_block_delta', { type: 'content_block_delta', index: this.#calls.get(index), delta: { type: 'input_json_delta', partial_json: fn.arguments } })
      }
    }
    if (choice?.finish_reason) this.#finish = choice.finish_reason
    return out
  }

  #start(chunk: Json): string {
    if (this.#started) return ''
    this.#started = true
    this.#id = String(chunk.id ?? '')
    this.#model = String(chunk.model ?? '')
    return frame('message_start', { type: 'message_start', message: {
      id: this.#id, type: 'message', role: 'assistant', model: this.#model, content: [], stop_reason: null, stop_sequence: null,
      usage: { input_tokens: 0, output_tokens: 0 },
    } })
  }

  #open(kind: 'text' | 'tool', tool?: { id: unknown; name: unknown }): string {
    let out = this.#close()
    this.#block++
    this.#blockKind = kind
    const block = kind === 'text' ? { type: 'text', text: '' } : { type: 'tool_use', id: tool?.id, name: tool?.name, input: {} }
    out += frame('content_block_start', { type: 'content_block_start', index: this.#block, content_block: block })
    return out
  }

  #close(): string {
    if (this.#blockKind === undefined) return ''
    this.#blockKind = undefined
    return frame('content_block_stop', { type: 'content_block_stop', index: this.#block })
  }

  #stop(): string {
    if (this.#ended || !this.#started) return ''
    this.#ended = true
    return this.#close() +
      frame('message_delta', { type: 'message_delta', delta: { stop_reason: stopReasonOf(this.#finish), stop_sequence: null }, usage: this.#usage }) +
      frame('message_stop', { type: 'message_stop' })
  }
}
