/**
 * What every tool bridge keeps between the CLI and the client: the calls parked on the client's answer (each with its
 * deadline), and the step under way (the text sink, and the step itself when the CLI gets there before anyone waits).
 */
import type { AliveSink, Step, TextSink, ToolCall, ToolResult } from './types.ts'

interface Parked {
  readonly call: ToolCall
  readonly deliver: (result: ToolResult) => void
  readonly timer: NodeJS.Timeout
}

/** Calls the CLI is waiting on, by our `toolu_…` id. Each holds the CLI's answer channel until the client's result. */
export class PendingCalls {
  readonly #byId = new Map<string, Parked>()
  readonly #timeoutMs: number
  readonly #expired: (call: ToolCall) => void

  /** `expired`: a call outlived `timeoutMs`; it was answered with an error and the bridge should end */
  constructor(timeoutMs: number, expired: (call: ToolCall) => void) {
    this.#timeoutMs = timeoutMs
    this.#expired = expired
  }

  park(call: ToolCall, deliver: (result: ToolResult) => void): void {
    const timer = setTimeout(() => {
      if (!this.#byId.delete(call.id)) return
      deliver({ content: `The client did not return a result for ${call.name} within ${this.#timeoutMs} ms.`, is_error: true })
      this.#expired(call)
    }, this.#timeoutMs)
    timer.unref()
    this.#byId.set(call.id, { call, deliver, timer })
  }

  resolve(id: string, result: ToolResult): boolean {
    const parked = this.#byId.get(id)
    if (!parked) return false
    this.#byId.delete(id)
    clearTimeout(parked.timer)
    parked.deliver(result)
    return true
  }

  get ids(): string[] {
    return [...this.#byId.keys()]
  }

  /** answers every call with the same (error) result: the bridge is closing and the CLI must not hang on them */
  answerAll(result: ToolResult): void {
    for (const id of this.ids) this.resolve(id, result)
  }
}

/**
 * The step under way. The CLI's events arrive whenever they come; the session asks for the next step when it is
 * ready for it. Text with nobody listening is kept for the next listener, and so is a step nobody waited for yet.
 */
export class StepChannel {
  #sink: TextSink | undefined
  #alive: AliveSink | undefined
  #buffered = ''
  #waiter: { resolve(step: Step): void; reject(error: Error): void } | undefined
  #early: Step | Error | undefined

  /** the CLI said something about this conversation (whatever it was): the step under way is alive */
  alive(): void {
    this.#alive?.()
  }

  text(delta: string): void {
    if (this.#sink) this.#sink(delta)
    else this.#buffered += delta
  }

  /** the step is over: to whoever waits, else kept for the next `wait` (an error too; tool calls add up) */
  settle(outcome: Step | Error): void {
    const waiter = this.#waiter
    this.#sink = undefined
    this.#alive = undefined
    this.#waiter = undefined
    if (!waiter) {
      const early = this.#early
      // calls that come one by one while nobody waits (Gemini runs them in turn) are handed out together
      if (early && !(early instanceof Error) && early.kind === 'tool_use' && !(outcome instanceof Error) && outcome.kind === 'tool_use') {
        this.#early = { ...early, calls: [...early.calls, ...outcome.calls] }
      } else this.#early ??= outcome
      return
    }
    if (outcome instanceof Error) waiter.reject(outcome)
    else waiter.resolve(outcome)
  }

  get waiting(): boolean {
    return this.#waiter !== undefined
  }

  wait(onText: TextSink, onAlive?: AliveSink): Promise<Step> {
    if (this.#waiter) return Promise.reject(new Error('a step is already awaited'))
    if (this.#buffered) {
      onText(this.#buffered)
      this.#buffered = ''
    }
    const early = this.#early
    if (early) {
      this.#early = undefined
      return early instanceof Error ? Promise.reject(early) : Promise.resolve(early)
    }
    this.#sink = onText
    this.#alive = onAlive
    return new Promise<Step>((resolve, reject) => { this.#waiter = { resolve, reject } })
  }
}
