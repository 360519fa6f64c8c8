/**
 * Builds one answer from what a child prints: Anthropic stream events (text deltas go out as they arrive), a whole
 * Anthropic message, or an error. The exec session's `events` output and the stdio protocol share it. Only text
 * blocks stream; other blocks in a final message are kept in the completion.
 */
import { OrchestratorError } from '../../src/errors.ts'
import type { Usage } from '../../src/protocol/messages.ts'
import type { Completion, SessionOutput } from './types.ts'
import { fromAnthropicError } from './upstream-errors.ts'

interface AnthropicMessage {
  type?: unknown
  content?: unknown
  stop_reason?: unknown
  stop_sequence?: unknown
  usage?: unknown
  model?: unknown
}

export class Answer {
  readonly #out: SessionOutput
  readonly #where: string
  /** a number, or how to count it when the usage is missing (counting may parse the request: the http kind's bodies are not) */
  readonly #inputTokens: number | (() => number)
  #text = ''
  #stopReason = 'end_turn'
  #stopSequence: string | null = null
  #usage: Usage | undefined
  #model: string | undefined

  constructor(out: SessionOutput, where: string, inputTokens: number | (() => number)) {
    this.#out = out
    this.#where = where
    this.#inputTokens = inputTokens
  }

  /** One Anthropic stream event; throws the child's error event as ours. */
  event(event: { type?: unknown; [k: string]: unknown }): void {
    switch (event.type) {
      case 'content_block_delta': {
        const delta = event.delta as { type?: unknown; text?: unknown } | undefined
        if (delta?.type === 'text_delta' && typeof delta.text === 'string') {
          this.#text += delta.text
          this.#out.text(delta.text)
        }
        return
      }
      case 'message_start': {
        const message = event.message as AnthropicMessage | undefined
        if (typeof message?.model === 'string') this.#model = message.model
        return
      }
      case 'message_delta': {
        const delta = event.delta as { stop_reason?: unknown; stop_sequence?: unknown } | undefined
        if (typeof delta?.stop_reason === 'string') this.#stopReason = delta.stop_reason
        if (typeof delta?.stop_sequence === 'string') this.#stopSequence = delta.stop_sequence
        if (isUsage(event.usage)) this.#usage = { ...this.#usage, ...event.usage }
        return
      }
      case 'error':
        throw fromAnthropicError(event.error, this.#where, typeof event.retry_after === 'number' ? event.retry_after : undefined)
      default:
        return // ping, content_block_start/stop, message_stop: nothing to keep
    }
  }

  /** Plain text output: every piece is a delta. */
  textPiece(text: string): void {
    this.#text += text
    this.#out.text(text)
  }

  /** What the streamed events (or plain text) added up to. */
  completion(): Completion {
    return {
      content: [{ type: 'text', text: this.#text }],
      stopReason: this.#stopReason,
      stopSequence: this.#stopSequence,
      usage: this.#usage ?? { input_tokens: typeof this.#inputTokens === 'number' ? this.#inputTokens : this.#inputTokens(), output_tokens: Math.max(1, Math.ceil(this.#text.length / 4)) },
      ...(this.#model ? { model: this.#model } : {}),
    }
  }

  /** A whole Anthropic message. Text already streamed is not sent again; unseen text goes out as one delta. */
  message(raw: unknown): Completion {
    const message = (raw && typeof raw === 'object' ? raw : {}) as AnthropicMessage
    if (!Array.isArray(message.content)) {
      throw new OrchestratorError('AGYC_UPSTREAM_FAILED', `${this.#where}: the answer is not an Anthropic message (no content array)`)
    }
    if (this.#text === '') {
      for (const block of message.content as { type?: unknown; text?: unknown }[]) {
        if (block?.type === 'text' && typeof block.text === 'string') this.#out.text(block.text)
      }
    }
    return {
      content: message.content as object[],
      stopReason: typeof message.stop_reason === 'string' ? message.stop_reason : this.#stopReason,
      stopSequence: typeof message.stop_sequence === 'string' ? message.stop_sequence : this.#stopSequence,
      usage: isUsage(message.usage) ? message.usage : this.completion().usage,
      ...(typeof message.model === 'string' ? { model: message.model } : this.#model ? { model: this.#model } : {}),
    }
  }
}

function isUsage(value: unknown): value is Usage {
  const u = value as { input_tokens?: unknown; output_tokens?: unknown } | undefined
  return typeof u?.input_tokens === 'number' && typeof u.output_tokens === 'number'
}
