/**
 * A Responses stream from an Anthropic answer, its events in the API's order: `response.created`,
 * `response.in_progress`, then per output item `response.output_item.added`, its parts and deltas
 * (`response.output_text.delta`, `response.function_call_arguments.delta`), their `.done` events and
 * `response.output_item.done`, and `response.completed` with the usage. Every event carries its `sequence_number`.
 * Fed text deltas and a final completion, or the Anthropic events of an upstream that frames its own stream.
 */
import { StreamEnd, type AnthropicUsage } from './openai-chat.ts'
import { functionCallItem, messageItem, messageItemId, responseObject } from './openai-responses.ts'

interface Event {
  type?: string
  index?: number
  message?: { model?: string; usage?: AnthropicUsage }
  content_block?: { type?: string; id?: string; name?: string }
  delta?: { type?: string; text?: string; partial_json?: string; stop_reason?: string | null }
  usage?: AnthropicUsage
}

type Json = Record<string, unknown>

export class ResponsesStream {
  readonly #id: string
  readonly #createdAt = Math.floor(Date.now() / 1000)
  #model: string
  #seq = 0
  #started = false
  /** items finished, in output order (what response.completed lists) */
  readonly #output: Json[] = []
  /** the text item under way */
  #text: string | undefined
  /** the function call under way (an upstream's streamed tool_use block) */
  #call: { id: string; name: string; args: string; index: number } | undefined
  readonly #end = new StreamEnd()

  constructor(id: string, model: string) {
    this.#id = id
    this.#model = model
  }

  #event(type: string, data: Json): string {
    return `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: this.#seq++, ...data })}\n\n`
  }

  #start(): string {
    if (this.#started) return ''
    this.#started = true
    const shell = responseObject(this.#id, this.#model, 'in_progress', [], undefined, null, this.#createdAt)
    return this.#event('response.created', { response: shell }) + this.#event('response.in_progress', { response: shell })
  }

  get #itemId(): string { return messageItemId(this.#id) }

  text(delta: string): string {
    let out = this.#start()
    if (this.#text === undefined) {
      this.#text = ''
      const index = this.#output.length
      out += this.#event('response.output_item.added', { output_index: index, item: messageItem(this.#id, '', 'in_progress') }) +
        this.#event('response.content_part.added', { item_id: this.#itemId, output_index: index, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } })
    }
    this.#text += delta
    return out + this.#event('response.output_text.delta', { item_id: this.#itemId, output_index: this.#output.length, content_index: 0, delta })
  }

  /** the text item ends (before a tool call, or at the end) */
  #closeText(): string {
    if (this.#text === undefined) return ''
    const text = this.#text
    const index = this.#output.length
    this.#text = undefined
    const item = messageItem(this.#id, text, 'completed')
    this.#output.push(item)
    return this.#event('response.output_text.done', { item_id: this.#itemId, output_index: index, content_index: 0, text }) +
      this.#event('response.content_part.done', { item_id: this.#itemId, output_index: index, content_index: 0, part: { type: 'output_text', text, annotations: [] } }) +
      this.#event('response.output_item.done', { output_index: index, item })
  }

  #openCall(id: string, name: string): string {
    const out = this.#start() + this.#closeText()
    const index = this.#output.length
    this.#call = { id, name, args: '', index }
    return out + this.#event('response.output_item.added', { output_index: index, item: functionCallItem(id, name, '', 'in_progress') })
  }

  #callDelta(delta: string): string {
    const call = this.#call
    if (!call || delta === '') return ''
    call.args += delta
    return this.#event('response.function_call_arguments.delta', { item_id: `fc_${call.id}`, output_index: call.index, delta })
  }

  #closeCall(): string {
    const call = this.#call
    if (!call) return ''
    this.#call = undefined
    const item = functionCallItem(call.id, call.name, call.args, 'completed')
    this.#output.push(item)
    return this.#event('response.function_call_arguments.done', { item_id: `fc_${call.id}`, output_index: call.index, arguments: call.args }) +
      this.#event('response.output_item.done', { output_index: call.index, item })
  }

  /** A call of a session that answers in one piece (the tool bridge): its arguments as one delta. */
  toolCall(id: string, name: string, input: unknown): string {
    return this.#openCall(id, name) + this.#callDelta(JSON.stringify(input ?? {})) + this.#closeCall()
  }

  event(event: Event): string {
    switch (event.type) {
      case 'message_start':
        if (event.message?.model) this.#model = event.message.model
        this.#end.started(event.message?.usage)
        return this.#start()
      case 'content_block_start':
        return event.content_block?.type === 'tool_use' ? this.#openCall(event.content_block.id ?? '', event.content_block.name ?? '') : ''
      case 'content_block_delta':
        if (event.delta?.type === 'text_delta' && event.delta.text) return this.text(event.delta.text)
        if (event.delta?.type === 'input_json_delta') return this.#callDelta(event.delta.partial_json ?? '')
        return ''
      case 'content_block_stop':
        return this.#call ? this.#closeCall() : ''
      case 'message_delta':
        this.#end.delta(event)
        return ''
      case 'message_stop':
        return this.end(this.#end.stopReason, this.#end.usage)
      default:
        return ''
    }
  }

  end(stopReason: string | null, usage: AnthropicUsage): string {
    const out = this.#start() + this.#closeText() + this.#closeCall()
    const status = stopReason === 'max_tokens' ? 'incomplete' : 'completed'
    const response = responseObject(this.#id, this.#model, status, this.#output, usage, stopReason, this.#createdAt)
    return out + this.#event(status === 'completed' ? 'response.completed' : 'response.incomplete', { response })
  }
}
