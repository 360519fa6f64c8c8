/**
 * The tool bridge inside an account's worker (docs/agent-clis.md, "The client's tools"): the live bridged
 * conversations of the account, by the `tool_use` ids their CLI waits on, and how a request runs through them.
 *
 * - A request whose last user turn answers exactly the calls one live conversation waits on continues it: each
 *   result is handed to the CLI, which goes on; its next step is the answer. The main thread routed it here
 *   (src/dispatch/tool-calls.ts) and already counts those calls as taken.
 * - Any other request opens a fresh conversation: the request's tools offered, the conversation rendered as text
 *   (agent/transcript.ts), images passed. A live conversation whose calls it answers only in part is closed: the
 *   client moved on without it.
 * - A step that ends on tool calls is an answer with `tool_use` blocks and `stop_reason: "tool_use"`; its ids go to
 *   the main thread as `parked`, and the CLI waits. A step that ends the turn is a plain answer; the conversation
 *   closes. A conversation that ends while parked (deadline, CLI gone, shutdown) says so with `unparked`, which
 *   frees the slot the main thread held for it.
 */
import { OrchestratorError } from '../../../src/errors.ts'
import type { FromWorker, Usage } from '../../../src/protocol/messages.ts'
import { estimateInputTokens, estimateTokens } from '../../../src/protocol/anthropic.ts'
import { renderConversation } from '../agent/transcript.ts'
import type { Completion, SessionOutput, SessionRequest } from '../types.ts'
import { clientTools, continuation, toolChoice } from './client-request.ts'
import type { AliveSink, ClientTool, Step, TextSink, ToolBridge } from './types.ts'

export interface BridgeOpenOptions {
  readonly tools: readonly ClientTool[]
  /** the client's system text; only a preset with `systemApart` gets it here, the others have it in the prompt */
  readonly system: string | undefined
  readonly toolResultTimeoutMs: number
  /** the bridge ended by itself or was closed: the conversation is gone */
  readonly onClosed: (reason: string) => void
}

/** What a preset brings: how to open a bridged conversation on its CLI. */
export interface BridgePreset {
  readonly what: string
  /** the CLI takes the client's system text apart (it replaces the CLI's own instructions) */
  readonly systemApart: boolean
  open(options: BridgeOpenOptions): Promise<ToolBridge>
}

export interface ConversationOptions {
  readonly toolResultTimeoutMs: number
  /**
   * longest silence from the CLI while a step runs, then AGYC_UPSTREAM_TIMEOUT (the preset's idleTimeoutMs). Any sign
   * of life restarts it, not only text (the bridge's `onAlive`): thinking, a tool call's input, a status event.
   */
  readonly idleTimeoutMs: number
  /** the model to report when the CLI names none */
  readonly model?: string | undefined
  emit(event: FromWorker): void
}

interface Conversation {
  readonly bridge: ToolBridge
  /** the ids of its last answer's tool_use blocks, still with the client */
  parked: string[]
  closed: boolean
}


/** how long closing every conversation at shutdown may take before the CLI is stopped anyway */
const CLOSE_ALL_GRACE_MS = 3_000

export class BridgeConversations {
  readonly #preset: BridgePreset
  readonly #options: ConversationOptions
  readonly #byCall = new Map<string, Conversation>()
  readonly #live = new Set<Conversation>()
  /**
   * Conversations closing in the background (a turn that ended, a client that left): a stop waits for them too, or
   * a Claude Code process killed a moment before the account stopped would outlive it.
   */
  readonly #closing = new Set<Promise<void>>()

  constructor(preset: BridgePreset, options: ConversationOptions) {
    this.#preset = preset
    this.#options = options
  }

  /** tool calls parked in this worker (for tests and logs; the main thread keeps its own count) */
  get parked(): number {
    return this.#byCall.size
  }

  async run(req: SessionRequest, out: SessionOutput): Promise<Completion> {
    const what = this.#preset.what
    const request = req.request
    const choice = toolChoice(request)
    if (choice === 'any' || choice === 'tool') {
      throw new OrchestratorError('AGYC_INVALID_REQUEST', `tool_choice: ${what} cannot be made to call a tool (its CLI has no tool_choice; the model decides): send "auto" or "none"`)
    }
    const next = continuation(request, what)
    if (next) {
      const conversation = this.#byCall.get(next.ids[0])
      const exact = conversation !== undefined && conversation.parked.length === next.ids.length && next.ids.every((id) => this.#byCall.get(id) === conversation)
      if (conversation && (!exact || choice === 'none')) {
        // the client answered part of it, or wants no more tools: that CLI turn cannot give what it asks
        this.#close(conversation, 'the client continued the conversation without it')
      } else if (conversation) {
        for (const id of next.ids) this.#byCall.delete(id)
        conversation.parked = []
        for (const id of next.ids) conversation.bridge.resolve(id, next.results.get(id)!)
        return this.#step(conversation, req, out, (onText, onAlive) => conversation.bridge.next(onText, onAlive))
      }
    }
    // a fresh conversation: what the client sent becomes the CLI's first turn
    const rendered = renderConversation(request, what, { images: true, systemApart: this.#preset.systemApart })
    const tools = choice === 'none' ? [] : clientTools(request, what)
    let conversation: Conversation | undefined
    const bridge = await this.#preset.open({
      tools, system: this.#preset.systemApart ? rendered.system : undefined,
      toolResultTimeoutMs: this.#options.toolResultTimeoutMs,
      onClosed: (reason) => { if (conversation) this.#ended(conversation, reason) },
    })
    conversation = { bridge, parked: [], closed: false }
    this.#live.add(conversation)
    const opened = conversation
    return this.#step(opened, req, out, (onText, onAlive) => bridge.start(rendered.prompt, onText, onAlive))
  }

  /** closes in the background: what the CLI answers to the interrupt is of no use to anyone, its failure neither */
  #close(conversation: Conversation, reason: string): void {
    const closing = conversation.bridge.close(reason).catch(() => {})
    this.#closing.add(closing)
    void closing.finally(() => this.#closing.delete(closing))
  }

  /** runs the CLI to its next step and turns the step into the answer */
  async #step(conversation: Conversation, req: SessionRequest, out: SessionOutput, run: (onText: TextSink, onAlive: AliveSink) => Promise<Step>): Promise<Completion> {
    const what = this.#preset.what
    if (req.signal.aborted) {
      this.#close(conversation, 'the client went away')
      throw new OrchestratorError('AGYC_CANCELLED', 'the request was cancelled')
    }
    let text = ''
    const { promise: stopped, reject: stop } = Promise.withResolvers<never>()
    const onAbort = (): void => stop(new OrchestratorError('AGYC_CANCELLED', 'the request was cancelled'))
    const idle = setTimeout(() => stop(new OrchestratorError('AGYC_UPSTREAM_TIMEOUT', `${what} was silent on this request for ${this.#options.idleTimeoutMs} ms`)), this.#options.idleTimeoutMs)
    req.signal.addEventListener('abort', onAbort, { once: true })
    let step: Step
    try {
      step = await Promise.race([
        run((delta) => {
          text += delta
          idle.refresh()
          out.text(delta)
        }, () => idle.refresh()),
        stopped,
      ])
      // the client left as the step came: nobody will answer these calls (the host drops this answer)
      if (req.signal.aborted) throw new OrchestratorError('AGYC_CANCELLED', 'the request was cancelled')
    } catch (err) {
      // the CLI's turn stops with the request (a client that left, a silent CLI); its conversation is no use after
      this.#close(conversation, err instanceof OrchestratorError && err.code === 'AGYC_CANCELLED' ? 'the client went away' : (err as Error).message)
      throw err
    } finally {
      clearTimeout(idle)
      req.signal.removeEventListener('abort', onAbort)
    }
    const content: object[] = text ? [{ type: 'text', text }] : []
    if (step.kind === 'end') {
      this.#close(conversation, 'the turn ended')
      if (content.length === 0) content.push({ type: 'text', text: '' })
      return { content, stopReason: step.stopReason, usage: this.#usage(step, req, text), ...this.#model(step) }
    }
    if (conversation.closed) throw new OrchestratorError('AGYC_UPSTREAM_FAILED', `${what}: the conversation ended as it called a tool`)
    const ids = step.calls.map((call) => call.id)
    conversation.parked = ids
    for (const id of ids) this.#byCall.set(id, conversation)
    for (const call of step.calls) content.push({ type: 'tool_use', id: call.id, name: call.name, input: call.input })
    return { content, stopReason: 'tool_use', usage: this.#usage(step, req, text + JSON.stringify(step.calls)), ...this.#model(step), parked: ids }
  }

  /** a conversation is gone: its calls leave the table, and those the client still had are no longer parked */
  #ended(conversation: Conversation, reason: string): void {
    if (conversation.closed) return
    conversation.closed = true
    this.#live.delete(conversation)
    const ids = conversation.parked
    conversation.parked = []
    for (const id of ids) this.#byCall.delete(id)
    if (ids.length === 0) return
    this.#options.emit({ kind: 'unparked', ids })
    this.#options.emit({ kind: 'log', level: 'info', msg: 'parked tool calls ended without the client\'s result', fields: { what: this.#preset.what, ids, reason } })
  }

  /** shutdown: every conversation ends (its CLI answered with an error, its turn stopped), and those closing already are gone; bounded in time */
  async closeAll(reason: string): Promise<void> {
    const closing = Promise.all([...[...this.#live].map((c) => c.bridge.close(reason).catch(() => {})), ...this.#closing])
    let timer: NodeJS.Timeout | undefined
    await Promise.race([closing, new Promise((resolve) => { timer = setTimeout(resolve, CLOSE_ALL_GRACE_MS) })])
    clearTimeout(timer)
    // a bridge whose CLI did not answer in time is forgotten all the same: the CLI is about to be stopped
    for (const conversation of [...this.#live]) this.#ended(conversation, reason)
  }

  #usage(step: Step, req: SessionRequest, produced: string): Usage {
    if (step.usage) return { ...step.usage }
    return { input_tokens: estimateInputTokens(req.request), output_tokens: estimateTokens(produced) }
  }

  #model(step: Step): { model?: string } {
    const model = step.model ?? this.#options.model
    return model ? { model } : {}
  }
}
