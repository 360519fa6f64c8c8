/**
 * How a request's answer is written in its client's wire format, inside the account's worker (the main thread only
 * copies bytes): the Anthropic Messages stream and message, or OpenAI's Chat Completions and Responses, chosen by the
 * request's `format` (src/protocol/run-request.ts). A session produces text deltas and a completion, or (the `http`
 * kind) Anthropic SSE events of its own; each framer turns those into its format.
 */
import * as sse from '../src/formats/anthropic-sse.ts'
import { messageToChat } from '../src/formats/openai-chat.ts'
import { ChatStream, parseSseEvents } from '../src/formats/openai-chat-stream.ts'
import { messageToResponse } from '../src/formats/openai-responses.ts'
import { ResponsesStream } from '../src/formats/openai-responses-stream.ts'
import type { Completion } from './sessions/types.ts'

/** What a framer knows of its request. */
export interface Framed {
  readonly messageId: string
  readonly model: string
  /** the request's input tokens, estimated (a stream's first event carries them) */
  inputTokens(): number
}

export interface Framer {
  /** stream bytes for one text delta */
  text(delta: string): string
  /** stream bytes for Anthropic SSE events an upstream framed (whole events) */
  raw(events: string): string
  /** the rest of a stream at its end; `passthrough`: the upstream's own events went out (their end included) */
  tail(completion: Completion, passthrough: boolean): string
  /** a non-streamed answer, whole */
  whole(completion: Completion, accountId: string): string
}

type Block = { type?: string; text?: string; id?: string; name?: string; input?: unknown }

/** the Anthropic message a completion is, as the Messages API writes it */
function message(run: Framed, completion: Completion, accountId: string) {
  return {
    id: run.messageId, type: 'message', role: 'assistant', model: completion.model ?? run.model, content: completion.content,
    stop_reason: completion.stopReason, stop_sequence: completion.stopSequence ?? null, usage: completion.usage,
    metadata: { account_id: accountId },
  }
}

/** a completion as the Messages API writes it whole */
type WholeMessage = ReturnType<typeof message>

function textOf(completion: Completion): string {
  let text = ''
  for (const block of completion.content as Block[]) if (block.type === 'text') text += block.text ?? ''
  return text
}

export class AnthropicFramer implements Framer {
  readonly #run: Framed
  /** message_start and the text block have been framed */
  #opened = false

  constructor(run: Framed) {
    this.#run = run
  }

  #open(): string {
    if (this.#opened) return ''
    this.#opened = true
    return sse.messageStart(this.#run.messageId, this.#run.model, this.#run.inputTokens()) + sse.textBlockStart(0) + sse.PING
  }

  text(delta: string): string {
    return this.#open() + sse.textDelta(0, delta)
  }

  raw(events: string): string {
    return events
  }

  tail(completion: Completion, passthrough: boolean): string {
    if (passthrough) return '' // the upstream's own events, message_stop included, already went out
    let tail = ''
    if (!this.#opened) {
      // nothing streamed yet (a session that answers in one piece): the text as one delta
      tail = this.#open()
      const text = textOf(completion)
      if (text) tail += sse.textDelta(0, text)
    }
    tail += sse.blockStop(0)
    // the tool bridge's calls, after the text: one tool_use block each, its input as one JSON delta
    let index = 0
    for (const block of completion.content as Block[]) {
      if (block.type !== 'tool_use') continue
      index++
      tail += sse.toolUseStart(index, block.id ?? '', block.name ?? '') + sse.inputJsonDelta(index, JSON.stringify(block.input ?? {})) + sse.blockStop(index)
    }
    return tail + sse.messageDelta(completion.stopReason, completion.stopSequence ?? null, completion.usage) + sse.MESSAGE_STOP
  }

  whole(completion: Completion, accountId: string): string {
    return JSON.stringify(message(this.#run, completion, accountId))
  }
}

/** What an OpenAI stream writer (Chat Completions' or Responses') takes: text, Anthropic events, whole tool calls, the end. */
interface OpenAIStream {
  text(delta: string): string
  event(event: ReturnType<typeof parseSseEvents>[number]): string
  toolCall(id: string, name: string, input: unknown): string
  end(stopReason: string | null, usage: Completion['usage']): string
}

/**
 * An OpenAI format: Chat Completions (`chat.completion`, or its chunks and `[DONE]`) or Responses (a `response`, or
 * its typed events). The stream writer does the format; this is the plumbing both share.
 */
export class OpenAIFramer implements Framer {
  readonly #run: Framed
  readonly #stream: OpenAIStream
  readonly #whole: (whole: WholeMessage) => object
  #streamedText = false

  constructor(run: Framed, stream: OpenAIStream, whole: (whole: WholeMessage) => object) {
    this.#run = run
    this.#stream = stream
    this.#whole = whole
  }

  text(delta: string): string {
    this.#streamedText = true
    return this.#stream.text(delta)
  }

  raw(events: string): string {
    let out = ''
    for (const event of parseSseEvents(events)) out += this.#stream.event(event)
    return out
  }

  tail(completion: Completion, passthrough: boolean): string {
    if (passthrough) return ''
    let out = ''
    if (!this.#streamedText) {
      const text = textOf(completion)
      if (text) out += this.#stream.text(text)
    }
    for (const block of completion.content as Block[]) {
      if (block.type === 'tool_use') out += this.#stream.toolCall(block.id ?? '', block.name ?? '', block.input)
    }
    return out + this.#stream.end(completion.stopReason, completion.usage)
  }

  whole(completion: Completion, accountId: string): string {
    return JSON.stringify(this.#whole(message(this.#run, completion, accountId)))
  }
}

export function framerFor(run: Framed, format: string | undefined, includeUsage: boolean): Framer {
  switch (format) {
    case 'openai-chat': return new OpenAIFramer(run, new ChatStream(run.messageId, run.model, includeUsage), messageToChat)
    case 'openai-responses': return new OpenAIFramer(run, new ResponsesStream(run.messageId, run.model), messageToResponse)
    default: return new AnthropicFramer(run)
  }
}
