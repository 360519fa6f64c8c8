/**
 * A Chat Completions stream from an Anthropic answer: `chat.completion.chunk` lines, `data: [DONE]` at the end. Fed
 * either text deltas and a final completion (the sessions that produce text), or the Anthropic events of an upstream
 * that frames its own stream (`event`). Tool calls stream as they come: the first chunk of a call carries its index,
 * id and name, its arguments follow piece by piece, and the finish reason is `tool_calls` (docs/api.md, "OpenAI doors").
 */
import { StreamEnd, chatUsage, finishReason, type AnthropicUsage } from './openai-chat.ts'

const line = (chunk: object): string => `data: ${JSON.stringify(chunk)}\n\n`
export const DONE = 'data: [DONE]\n\n'

interface Event {
  type?: string
  index?: number
  message?: { id?: string; model?: string; usage?: AnthropicUsage }
  content_block?: { type?: string; id?: string; name?: string }
  delta?: { type?: string; text?: string; thinking?: string; partial_json?: string; stop_reason?: string | null }
  usage?: AnthropicUsage
}

export class ChatStream {
  readonly #id: string
  readonly #created = Math.floor(Date.now() / 1000)
  readonly #includeUsage: boolean
  #model: string
  #opened = false
  /** Anthropic block index → tool call index, for the blocks that are tool calls */
  readonly #tools = new Map<number, number>()
  readonly #end = new StreamEnd()

  constructor(id: string, model: string, includeUsage: boolean) {
    this.#id = `chatcmpl-${id}`
    this.#model = model
    this.#includeUsage = includeUsage
  }

  #chunk(delta: object, finish: string | null = null): string {
    return line({ id: this.#id, object: 'chat.completion.chunk', created: this.#created, model: this.#model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })
  }

  /** a text delta's chunk: the same bytes as #chunk({content}), its fixed parts serialised once per stream */
  #textPrefix: string | undefined
  #textChunk(text: string): string {
    this.#textPrefix ??= `data: {"id":${JSON.stringify(this.#id)},"object":"chat.completion.chunk","created":${this.#created},"model":${JSON.stringify(this.#model)},"choices":[{"index":0,"delta":{"content":`
    return `${this.#textPrefix}${JSON.stringify(text)}},"logprobs":null,"finish_reason":null}]}\n\n`
  }

  /** the first chunk, with the role */
  #open(): string {
    if (this.#opened) return ''
    this.#opened = true
    return this.#chunk({ role: 'assistant', content: '' })
  }

  text(delta: string): string {
    return this.#open() + this.#textChunk(delta)
  }

  /** The calls of a session that answers in one piece (the tool bridge): each as one chunk, arguments whole. */
  toolCall(id: string, name: string, input: unknown): string {
    const index = this.#tools.size
    this.#tools.set(-1 - index, index)
    return this.#open() + this.#chunk({ tool_calls: [{ index, id, type: 'function', function: { name, arguments: JSON.stringify(input ?? {}) } }] })
  }

  /** One Anthropic stream event (already parsed) as the chunks it makes. */
  event(event: Event): string {
    switch (event.type) {
      case 'message_start':
        if (event.message?.model) this.#model = event.message.model
        this.#textPrefix = undefined
        this.#end.started(event.message?.usage)
        return this.#open()
      case 'content_block_start': {
        const block = event.content_block
        if (block?.type !== 'tool_use') return ''
        const index = this.#tools.size
        this.#tools.set(event.index ?? 0, index)
        return this.#open() + this.#chunk({ tool_calls: [{ index, id: block.id, type: 'function', function: { name: block.name, arguments: '' } }] })
      }
      case 'content_block_delta': {
        const delta = event.delta
        if (delta?.type === 'text_delta' && delta.text) return this.text(delta.text)
        if (delta?.type === 'thinking_delta' && delta.thinking) return this.#open() + this.#chunk({ reasoning_content: delta.thinking })
        if (delta?.type === 'input_json_delta' && delta.partial_json) {
          const index = this.#tools.get(event.index ?? 0)
          if (index === undefined) return ''
          return this.#chunk({ tool_calls: [{ index, function: { arguments: delta.partial_json } }] })
        }
        return ''
      }
      case 'message_delta':
        this.#end.delta(event)
        return ''
      case 'message_stop':
        return this.end(this.#end.stopReason, this.#end.usage)
      default:
        return ''
    }
  }

  /** The last chunk (the finish reason), the usage chunk when asked for, and [DONE]. */
  end(stopReason: string | null, usage: AnthropicUsage): string {
    let out = this.#open() + this.#chunk({}, finishReason(stopReason))
    if (this.#includeUsage) {
      out += line({ id: this.#id, object: 'chat.completion.chunk', created: this.#created, model: this.#model, choices: [], usage: chatUsage(usage) })
    }
    return out + DONE
  }
}

/** Anthropic SSE text (whole events) as its events' data objects, in order. */
export function parseSseEvents(text: string): Event[] {
  const events: Event[] = []
  for (const block of text.split('\n\n')) {
    for (const row of block.split('\n')) {
      if (!row.startsWith('data:')) continue
      try {
        events.push(JSON.parse(row.slice(5)) as Event)
      } catch { /* not an event we can read: skipped, as a client would */ }
    }
  }
  return events
}
