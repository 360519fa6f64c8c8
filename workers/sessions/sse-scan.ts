import { OrchestratorError } from '../../src/errors.ts'
import type { Usage } from '../../src/protocol/messages.ts'
import { LineSplitter } from './process/lines.ts'
import { fromAnthropicError } from './upstream-errors.ts'

/** one SSE event of a streamed answer is held until it is complete: at most this many characters */
const EVENT_LIMIT = 16 * 1024 * 1024

/**
 * Cuts a passing Anthropic event stream into whole events and watches it for what the main thread needs at the end
 * (usage, stop reason, model) without holding the stream: only `message_*` and `error` data lines are parsed. An
 * `error` event is not passed on: it ends the scan as `failure`, our error.
 */
export class SseScan {
  stopped = false
  stopReason = 'end_turn'
  model: string | undefined
  usage: Usage = { input_tokens: 0, output_tokens: 0 }
  /** the upstream's error event, as ours: nothing after it is passed on */
  failure: OrchestratorError | undefined
  readonly #lines = new LineSplitter(EVENT_LIMIT)
  /** the lines of the event under way, and their length: one event is bounded like one line */
  #event: string[] = []
  #eventChars = 0
  #error = false

  /** the events `text` completed, as SSE text to pass on ('' when none), up to an error event (then `failure`) */
  push(text: string): string {
    let out = ''
    if (this.failure) return out
    for (const raw of this.#lines.push(text)) {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw
      if (line !== '') {
        this.#event.push(line)
        this.#eventChars += line.length
        if (this.#eventChars > EVENT_LIMIT) {
          this.failure = new OrchestratorError('AGYC_UPSTREAM_FAILED', `upstream sent an event longer than ${EVENT_LIMIT} characters`)
          return out
        }
        if (line.startsWith('event:') && line.slice(6).trim() === 'error') this.#error = true
        continue
      }
      if (this.#event.length === 0) continue
      const event = this.#event
      this.#event = []
      this.#eventChars = 0
      if (this.#error) this.#fail(event)
      else for (const l of event) if (l.startsWith('data:') && (l.includes('"message_') || l.includes('"error"'))) this.#data(l, event)
      if (this.failure) return out
      out += `${event.join('\n')}\n\n`
    }
    return out
  }

  #data(line: string, event: string[]): void {
    let data: { type?: string; message?: { model?: string; usage?: Usage }; delta?: { stop_reason?: string }; usage?: Partial<Usage> }
    try { data = JSON.parse(line.slice(5)) as typeof data } catch { return }
    if (data.type === 'message_start') {
      this.model = data.message?.model
      if (data.message?.usage) this.usage = { ...data.message.usage }
    } else if (data.type === 'message_delta') {
      if (data.delta?.stop_reason) this.stopReason = data.delta.stop_reason
      if (data.usage) this.usage = { ...this.usage, ...data.usage } as Usage
    } else if (data.type === 'message_stop') {
      this.stopped = true
    } else if (data.type === 'error') {
      this.#fail(event) // an error in the data of an event not named so
    }
  }

  #fail(event: string[]): void {
    const data = event.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n')
    let error: unknown
    try { error = (JSON.parse(data) as { error?: unknown }).error } catch { error = { type: 'api_error', message: data.slice(0, 500) } }
    this.failure = fromAnthropicError(error, 'upstream')
  }
}
