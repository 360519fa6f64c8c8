/**
 * The client's tools through Codex (issue 14): one app-server thread per bridged conversation, started with the
 * client's tools as `dynamicTools` and every built-in tool switched off by the thread's own config, so the account's
 * one `codex app-server` serves bridged and agent-mode threads side by side.
 *
 * When the model calls a tool, Codex sends the request `item/tool/call {threadId, turnId, callId, tool, arguments}`
 * and waits, without a timeout of its own, for `{contentItems, success}`; our answer is the client's `tool_result`.
 * The calls of one model response go out together, as the several `tool_use` blocks of one message. Knowing when a
 * response's calls are all there takes the thread's raw events (`experimentalRawEvents`): each `function_call` item
 * of the response (`rawResponseItem/completed`), then the response's end with its exact usage
 * (`rawResponse/completed`). Codex's `item/tool/call` requests come before or after that end, in any order; the step
 * is out once the response ended and every call it named has come. (`thread/tokenUsage/updated` is no signal: Codex
 * holds it back until the calls are answered.)
 */
import { OrchestratorError } from '../../../src/errors.ts'
import { fields, stringOf, type RpcParams } from '../agent/json-rpc.ts'
import { codexInput } from '../agent/prompt-input.ts'
import { codexError, turnError } from '../codex.ts'
import type { CodexThreads } from './codex-app-server.ts'
import { PendingCalls, StepChannel } from './pending.ts'
import {
  mintToolUseId, resultImages, resultText,
  type AliveSink, type ClientTool, type Prompt, type Step, type StepUsage, type TextSink, type ToolBridge, type ToolCall, type ToolResult,
} from './types.ts'

/**
 * Thread config that leaves the model the client's tools and nothing else, and leaves out the instructions about
 * what was removed (sandbox, environment, skills). Checked against Codex 0.169: the model request's `tools` holds
 * exactly the dynamic tools. A key this version does not know is ignored with a `configWarning`, never an error.
 */
export const CODEX_BUILTINS_OFF: Readonly<Record<string, boolean | string>> = {
  'features.shell_tool': false,
  'features.unified_exec': false,
  'features.multi_agent': false,
  'features.multi_agent_v2': false,
  'features.goals': false,
  'features.view_image': false,
  'features.image_generation': false,
  'features.code_mode': false,
  'features.code_mode_only': false,
  'features.request_permissions_tool': false,
  'features.standalone_web_search': false,
  'features.tool_suggest': false,
  'features.memories': false,
  web_search: 'disabled',
  'tools.experimental_request_user_input.enabled': false,
  'tools.update_plan.enabled': false,
  'skills.include_instructions': false,
  include_environment_context: false,
  include_permissions_instructions: false,
  include_apps_instructions: false,
}

export interface CodexBridgeOptions {
  readonly tools: readonly ClientTool[]
  /** the client's system text: it replaces Codex's own instructions, which describe tools the thread does not have */
  readonly system?: string
  readonly model?: string
  /** the thread's working directory (nothing runs there: no tool of Codex's is left) */
  readonly cwd: string
  readonly toolResultTimeoutMs: number
  /** the bridge ended by itself (a deadline passed, the server died); the session frees what it held */
  readonly onClosed?: (reason: string) => void
}

interface TurnError { message?: string; codexErrorInfo?: unknown }

export class CodexToolBridge implements ToolBridge {
  readonly #server: CodexThreads
  readonly #threadId: string
  readonly #model: string | undefined
  readonly #options: CodexBridgeOptions
  readonly #calls: PendingCalls
  readonly #step = new StepChannel()
  readonly #unlisten: () => void
  readonly #toolNames: ReadonlySet<string>
  /** call ids the model response under way holds, in the model's order */
  #expected: string[] = []
  /** its calls Codex has sent, by Codex's call id, not yet handed out */
  #gathered = new Map<string, ToolCall>()
  #responseOver = false
  #usage: StepUsage | undefined
  #turnId: string | undefined
  #item: string | undefined
  #turnError: TurnError | undefined
  /** why the bridge ended; every later call fails with it */
  #closed: OrchestratorError | undefined

  private constructor(server: CodexThreads, threadId: string, model: string | undefined, options: CodexBridgeOptions) {
    this.#server = server
    this.#threadId = threadId
    this.#model = model
    this.#options = options
    this.#toolNames = new Set(options.tools.map((t) => t.name))
    this.#calls = new PendingCalls(options.toolResultTimeoutMs, (call) => {
      void this.close(`no result for ${call.id} within ${options.toolResultTimeoutMs} ms`)
    })
    // whatever Codex says about this thread is a sign of life: reasoning, a tool call's arguments, raw response items
    this.#unlisten = server.listen(threadId, {
      notification: (method, params) => {
        this.#step.alive()
        this.#onNotification(method, params)
      },
      request: (method, params) => {
        this.#step.alive()
        return this.#onRequest(method, params)
      },
      closed: (reason) => void this.#end(new OrchestratorError('AGYC_UPSTREAM_FAILED', `codex: ${reason}`)),
    })
  }

  /** starts the thread: the client's tools offered, Codex's own off */
  static async open(server: CodexThreads, options: CodexBridgeOptions): Promise<CodexToolBridge> {
    const started = await server.peer.request<{ thread: { id: string; model?: string } }>('thread/start', {
      ephemeral: true,
      // the only way to know that a model response is over while its calls are pending (see above)
      experimentalRawEvents: true,
      cwd: options.cwd,
      approvalPolicy: 'never',
      sandbox: 'read-only',
      config: CODEX_BUILTINS_OFF,
      dynamicTools: options.tools.map((t) => ({ type: 'function', name: t.name, description: t.description ?? '', inputSchema: t.input_schema })),
      ...(options.system !== undefined ? { baseInstructions: options.system } : {}),
      ...(options.model ? { model: options.model } : {}),
    })
    return new CodexToolBridge(server, started.thread.id, started.thread.model ?? options.model, options)
  }

  get threadId(): string {
    return this.#threadId
  }

  get pending(): readonly string[] {
    return this.#calls.ids
  }

  async start(prompt: Prompt, onText: TextSink, onAlive?: AliveSink): Promise<Step> {
    if (this.#closed) throw this.#closed
    if (this.#turnId) throw new Error('codex: a turn is under way on this thread')
    const step = this.#step.wait(onText, onAlive)
    this.#turnId = '' // under way; the id comes with the answer
    try {
      const turn = await this.#server.peer.request<{ turn: { id: string } }>('turn/start', { threadId: this.#threadId, input: codexInput(prompt) })
      if (this.#turnId === '') this.#turnId = turn.turn.id
    } catch (err) {
      this.#turnId = undefined
      this.#step.settle(new OrchestratorError('AGYC_UPSTREAM_FAILED', `codex: ${(err as Error).message}`))
    }
    return step
  }

  resolve(id: string, result: ToolResult): boolean {
    return this.#closed === undefined && this.#calls.resolve(id, result)
  }

  next(onText: TextSink, onAlive?: AliveSink): Promise<Step> {
    if (this.#closed) return Promise.reject(this.#closed)
    return this.#step.wait(onText, onAlive)
  }

  close(reason = 'the conversation was closed'): Promise<void> {
    return this.#end(new OrchestratorError('AGYC_CANCELLED', `codex: ${reason}`))
  }

  async #end(error: OrchestratorError): Promise<void> {
    if (this.#closed !== undefined) return
    this.#closed = error
    const reason = error.message.replace(/^codex: /, '')
    // Codex would wait for these forever (it has no timeout on dynamic calls): answer them first
    this.#calls.answerAll({ content: `The call was abandoned: ${reason}.`, is_error: true })
    // whoever waits hears why now, not the "interrupted" that the interrupt below brings
    this.#step.settle(error)
    this.#options.onClosed?.(reason)
    const turnId = this.#turnId
    if (turnId) await this.#server.peer.request('turn/interrupt', { threadId: this.#threadId, turnId }).catch(() => {})
    this.#unlisten()
    await this.#server.peer.request('thread/unsubscribe', { threadId: this.#threadId }).catch(() => {})
  }

  #onRequest(method: string, params: RpcParams): unknown {
    if (method !== 'item/tool/call') throw new Error(`method ${method} is not offered by this client`)
    const call: ToolCall = { id: mintToolUseId(), name: String(params.tool), input: params.arguments ?? {} }
    if (this.#closed !== undefined) return toContentItems({ content: 'This conversation is closed.', is_error: true })
    const answer = new Promise((resolve) => this.#calls.park(call, (result) => resolve(toContentItems(result))))
    this.#gathered.set(String(params.callId), call)
    this.#settleCallsWhenComplete()
    return answer
  }

  #onNotification(method: string, params: RpcParams): void {
    switch (method) {
      case 'turn/started':
        if (this.#turnId === '') this.#turnId = stringOf(fields(params.turn).id)
        return
      case 'item/agentMessage/delta':
        if (typeof params.delta !== 'string') return
        // two messages of one turn (say, before and after a tool call Codex made itself) stay two paragraphs
        if (this.#item !== undefined && this.#item !== stringOf(params.itemId)) this.#step.text('\n\n')
        this.#item = stringOf(params.itemId)
        this.#step.text(params.delta)
        return
      case 'rawResponseItem/completed': {
        const item = fields(params.item)
        if (item.type === 'function_call' && typeof item.name === 'string' && this.#toolNames.has(item.name)) this.#expected.push(String(item.call_id))
        return
      }
      case 'rawResponse/completed':
        if (typeof fields(params.usage).inputTokens === 'number') this.#usage = addUsage(this.#usage, fields(params.usage))
        this.#responseOver = true
        this.#settleCallsWhenComplete()
        return
      case 'error':
        if (!params.willRetry) this.#turnError = turnError(params.error)
        return
      case 'turn/completed':
        this.#onTurnCompleted(fields(params.turn))
        return
      default:
        return
    }
  }

  /** once the response is over and Codex sent every call it holds: one step, in the model's order */
  #settleCallsWhenComplete(): void {
    if (!this.#responseOver) return
    if (this.#expected.length === 0 && this.#gathered.size === 0) {
      this.#responseOver = false // a response without calls of ours: the turn goes on or ends
      return
    }
    if (!this.#expected.every((id) => this.#gathered.has(id))) return
    const order = [...this.#expected, ...[...this.#gathered.keys()].filter((id) => !this.#expected.includes(id))]
    const calls = order.map((id) => this.#gathered.get(id)!)
    this.#expected = []
    this.#gathered.clear()
    this.#responseOver = false
    const usage = this.#usage
    this.#usage = undefined
    this.#item = undefined
    this.#step.settle({ kind: 'tool_use', calls, ...(usage ? { usage } : {}), ...(this.#model ? { model: this.#model } : {}) })
  }

  #onTurnCompleted(turn: RpcParams): void {
    this.#turnId = undefined
    this.#item = undefined
    this.#expected = []
    this.#gathered.clear()
    this.#responseOver = false
    if (turn.status === 'completed') {
      const usage = this.#usage
      this.#usage = undefined
      this.#step.settle({ kind: 'end', stopReason: 'end_turn', ...(usage ? { usage } : {}), ...(this.#model ? { model: this.#model } : {}) })
    } else if (turn.status === 'interrupted') {
      this.#step.settle(new OrchestratorError('AGYC_CANCELLED', 'codex: the turn was interrupted'))
    } else {
      this.#step.settle(codexError(turnError(turn.error) ?? this.#turnError))
    }
    this.#turnError = undefined
  }
}

/** adds one model response's counts (Codex's `rawResponse/completed` usage; a count it leaves out is 0) */
function addUsage(sum: StepUsage | undefined, last: RpcParams): StepUsage {
  const count = (value: unknown): number => (typeof value === 'number' ? value : 0)
  return {
    input_tokens: (sum?.input_tokens ?? 0) + count(last.inputTokens),
    output_tokens: (sum?.output_tokens ?? 0) + count(last.outputTokens),
    cache_read_input_tokens: (sum?.cache_read_input_tokens ?? 0) + count(last.cachedInputTokens),
  }
}

/** the client's result as Codex's `DynamicToolCallResponse`: text and data-URL images, `success` = not an error */
export function toContentItems(result: ToolResult): { contentItems: object[]; success: boolean } {
  const items: object[] = []
  const text = resultText(result)
  if (text || resultImages(result).length === 0) items.push({ type: 'inputText', text })
  for (const image of resultImages(result)) items.push({ type: 'inputImage', imageUrl: `data:${image.media_type};base64,${image.data}` })
  return { contentItems: items, success: result.is_error !== true }
}
