/**
 * The client's tools through Gemini CLI (issue 14): one ACP session per bridged conversation on the account's
 * `gemini --acp`, created with our MCP server (gemini-mcp.ts) in `mcpServers` and run in the bridge folder whose
 * workspace settings exclude every built-in (gemini-settings.ts). The model sees the client's tools as
 * `mcp_<server>_<name>`; a call reaches us as MCP `tools/call`, after a `session/request_permission` that we allow.
 *
 * Gemini runs tool calls one at a time: of two calls in one model response, the second reaches us only after the
 * first was answered. So each call is its own step (a message with one `tool_use`); calls that arrive while nobody
 * waits are handed out together. Gemini reports token counts only when the prompt ends: tool_use steps carry none,
 * the end step carries the whole turn's.
 */
import { OrchestratorError } from '../../../src/errors.ts'
import { cliError } from '../agent/cli-errors.ts'
import { fields, RpcError, type RpcParams } from '../agent/json-rpc.ts'
import { acpPrompt } from '../agent/prompt-input.ts'
import { permissionOptions, type AcpSessions } from './gemini-acp.ts'
import type { ClientToolServer, ToolRoute } from './gemini-mcp.ts'
import { PendingCalls, StepChannel } from './pending.ts'
import { mintToolUseId, type AliveSink, type ClientTool, type Prompt, type Step, type TextSink, type ToolBridge, type ToolResult } from './types.ts'

/** the MCP server's name as Gemini shows it to the model: `mcp_client_<tool>` */
export const MCP_SERVER_NAME = 'client'

/**
 * A call answered through ACP's MCP config cannot wait longer than Gemini's default MCP timeout (10 min; a server
 * passed in `session/new` has no `timeout` field): past it Gemini fails the call itself and the model goes on.
 */
export const GEMINI_MAX_TOOL_WAIT_MS = 10 * 60 * 1000 - 15_000

export interface GeminiBridgeOptions {
  readonly tools: readonly ClientTool[]
  /** the bridge folder (prepareBridgeWorkspace): its settings turn the built-ins off */
  readonly cwd: string
  /** capped at GEMINI_MAX_TOOL_WAIT_MS */
  readonly toolResultTimeoutMs: number
  readonly onClosed?: (reason: string) => void
}

interface PromptResult {
  stopReason?: string
  _meta?: { quota?: { token_count?: { input_tokens?: number; output_tokens?: number }; model_usage?: { model?: string }[] } }
}

const STOP_REASONS: Record<string, 'end_turn' | 'max_tokens' | 'refusal'> = { end_turn: 'end_turn', max_tokens: 'max_tokens', refusal: 'refusal', max_turn_requests: 'end_turn' }

export class GeminiToolBridge implements ToolBridge {
  readonly #acp: AcpSessions
  readonly #route: ToolRoute
  readonly #sessionId: string
  readonly #options: GeminiBridgeOptions
  readonly #calls: PendingCalls
  readonly #step = new StepChannel()
  readonly #unlisten: () => void
  #prompting = false
  #closed: OrchestratorError | undefined

  private constructor(acp: AcpSessions, route: ToolRoute, sessionId: string, options: GeminiBridgeOptions, calls: PendingCalls) {
    this.#acp = acp
    this.#route = route
    this.#sessionId = sessionId
    this.#options = options
    this.#calls = calls
    // any update of the session is a sign of life: thoughts, tool calls and their progress, plans
    this.#unlisten = acp.listen(sessionId, {
      update: (update) => {
        this.#step.alive()
        const content = fields(update.content)
        if (update.sessionUpdate === 'agent_message_chunk' && content.type === 'text' && typeof content.text === 'string') this.#step.text(content.text)
      },
      request: (method, params) => {
        this.#step.alive()
        return this.#onRequest(method, params)
      },
      closed: (reason) => void this.#end(new OrchestratorError('AGYC_UPSTREAM_FAILED', `gemini-cli: ${reason}`)),
    })
  }

  static async open(acp: AcpSessions, server: ClientToolServer, options: GeminiBridgeOptions): Promise<GeminiToolBridge> {
    const timeoutMs = Math.min(options.toolResultTimeoutMs, GEMINI_MAX_TOOL_WAIT_MS)
    // the calls arrive through the MCP server before the bridge exists: they find it through this holder
    let bridge: GeminiToolBridge | undefined
    const calls = new PendingCalls(timeoutMs, (call) => void bridge?.close(`no result for ${call.id} within ${timeoutMs} ms`))
    const route = server.register(options.tools, (name, input, signal) => {
      if (!bridge || bridge.#closed) return Promise.resolve({ content: 'This conversation is closed.', is_error: true })
      return bridge.#onCall(name, input, signal)
    })
    try {
      const created = await acp.peer.request<{ sessionId: string }>('session/new', {
        cwd: options.cwd,
        mcpServers: [{ type: 'http', name: MCP_SERVER_NAME, url: route.url, headers: route.headers }],
      })
      bridge = new GeminiToolBridge(acp, route, created.sessionId, options, calls)
      return bridge
    } catch (err) {
      await route.close()
      throw err instanceof RpcError ? cliError('gemini-cli', err.message, httpStatus(err)) : err
    }
  }

  get sessionId(): string {
    return this.#sessionId
  }

  get pending(): readonly string[] {
    return this.#calls.ids
  }

  start(prompt: Prompt, onText: TextSink, onAlive?: AliveSink): Promise<Step> {
    if (this.#closed) return Promise.reject(this.#closed)
    if (this.#prompting) return Promise.reject(new Error('gemini-cli: a prompt is under way in this session'))
    const step = this.#step.wait(onText, onAlive)
    this.#prompting = true
    this.#acp.peer.request<PromptResult>('session/prompt', { sessionId: this.#sessionId, prompt: acpPrompt(prompt) }).then(
      (result) => { this.#prompting = false; this.#onPromptEnd(result) },
      (err: unknown) => {
        this.#prompting = false
        this.#step.settle(err instanceof RpcError ? cliError('gemini-cli', err.message, httpStatus(err)) : new OrchestratorError('AGYC_UPSTREAM_FAILED', `gemini-cli: ${String(err)}`))
      },
    )
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
    return this.#end(new OrchestratorError('AGYC_CANCELLED', `gemini-cli: ${reason}`))
  }

  async #end(error: OrchestratorError): Promise<void> {
    if (this.#closed !== undefined) return
    this.#closed = error
    const reason = error.message.replace(/^gemini-cli: /, '')
    this.#calls.answerAll({ content: `The call was abandoned: ${reason}.`, is_error: true })
    this.#step.settle(error)
    this.#options.onClosed?.(reason)
    if (this.#prompting) this.#acp.peer.notify('session/cancel', { sessionId: this.#sessionId })
    this.#unlisten()
    // Gemini 0.61 has no session/close: the ACP session stays in the process; its MCP connection ends here
    await this.#route.close()
  }

  #onCall(clientName: string, input: Record<string, unknown>, signal: AbortSignal): Promise<ToolResult> {
    const call = { id: mintToolUseId(), name: clientName, input }
    const answer = new Promise<ToolResult>((resolve) => this.#calls.park(call, resolve))
    // Gemini gave up on the call (its own timeout, a cancel): the client's result has nowhere to go any more
    signal.addEventListener('abort', () => this.#calls.resolve(call.id, { content: 'cancelled', is_error: true }), { once: true })
    this.#step.settle({ kind: 'tool_use', calls: [call] })
    return answer
  }

  #onRequest(method: string, params: RpcParams): unknown {
    if (method !== 'session/request_permission') throw new Error(`method ${method} is not offered by this client`)
    const toolCall = fields(params.toolCall)
    const ours = String(toolCall.toolCallId ?? '').startsWith(`mcp_${MCP_SERVER_NAME}_`)
    const options = permissionOptions(params)
    // our own server's tools: allowed for the whole session, so later calls skip the prompt; anything else refused
    const chosen = ours
      ? options.find((o) => o.optionId === 'proceed_always_server') ?? options.find((o) => o.kind === 'allow_always') ?? options.find((o) => o.kind === 'allow_once')
      : options.find((o) => o.kind === 'reject_once') ?? options.find((o) => o.kind?.startsWith('reject'))
    return { outcome: chosen ? { outcome: 'selected', optionId: chosen.optionId } : { outcome: 'cancelled' } }
  }

  #onPromptEnd(result: PromptResult): void {
    if (result.stopReason === 'cancelled') {
      this.#step.settle(new OrchestratorError('AGYC_CANCELLED', 'gemini-cli: the prompt was cancelled'))
      return
    }
    const quota = result._meta?.quota
    const tokens = quota?.token_count
    const model = quota?.model_usage?.[0]?.model
    this.#step.settle({
      kind: 'end',
      stopReason: STOP_REASONS[result.stopReason ?? ''] ?? 'end_turn',
      ...(typeof tokens?.input_tokens === 'number' && typeof tokens.output_tokens === 'number' ? { usage: { input_tokens: tokens.input_tokens, output_tokens: tokens.output_tokens } } : {}),
      ...(model ? { model } : {}),
    })
  }
}

/** ACP errors carry the upstream's HTTP status as their code (429 "…Suggested retry after 42s.") */
function httpStatus(err: RpcError): number | undefined {
  return err.code !== undefined && err.code >= 400 && err.code < 600 ? err.code : undefined
}
