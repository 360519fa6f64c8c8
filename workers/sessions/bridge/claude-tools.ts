/**
 * The client's tools through Claude Code (issue 14; docs/notes/tool-bridge-claude.md). One CLI process per bridged
 * conversation (its stream-json input mode is one conversation per process), started with every built-in tool off
 * and the client's tools offered by an in-process ("SDK") MCP server of ours, which the CLI reaches over its control
 * protocol (claude-control.ts). With `CLAUDE_AGENT_SDK_MCP_NO_PREFIX=1` the model sees the client's own tool names
 * (not `mcp__client__Write`), descriptions and schemas.
 *
 * When the model calls a tool, the CLI prints the `tool_use` block (an `assistant` line per block), then asks our
 * server `tools/call` with the block's id in `_meta["claudecode/toolUseId"]`, and waits. The calls of one model
 * message go out together, as one step, once its `message_stop` has come; each is parked (PendingCalls) until the
 * client's result, which answers the CLI's `tools/call` (or waits for it: the CLI asks for calls one at a time unless
 * the tool is marked read-only, so we mark them all read-only and it asks for all of them at once).
 */
import { OrchestratorError } from '../../../src/errors.ts'
import { cliError } from '../agent/cli-errors.ts'
import { claudeContent } from '../agent/prompt-input.ts'
import { ClaudeControl, type ClaudeProcess, type McpMessage, type StreamLine } from './claude-control.ts'
import { CLAUDE_BRIDGE_SERVER, clientName, longDescriptions, mcpServerInfo, toMcpResult, toMcpTool } from './claude-mcp.ts'
import { PendingCalls, StepChannel } from './pending.ts'
import {
  mintToolUseId,
  type AliveSink, type ClientTool, type Prompt, type Step, type StepUsage, type TextSink, type ToolBridge, type ToolCall, type ToolResult,
} from './types.ts'

export interface ClaudeBridgeOptions {
  readonly tools: readonly ClientTool[]
  /** the client's system text: replaces Claude Code's own prompt, which describes tools the CLI no longer has */
  readonly system?: string
  /** added after the system prompt (the account's `systemPrompt`) */
  readonly appendSystem?: string
  readonly toolResultTimeoutMs: number
  /** how long the CLI may take to answer `initialize` (a cold start takes ~0.5 s) */
  readonly startTimeoutMs: number
  readonly maxLineBytes?: number
  /** the bridge ended by itself (a deadline passed, the CLI died); the session frees what it held */
  readonly onClosed?: (reason: string) => void
  /** something worth a log line: an API retry of the CLI's, a line that is not JSON */
  readonly log?: (msg: string, fields: Record<string, unknown>) => void
}

/** A call of the model to one of the client's tools, from its `tool_use` block to the answer of the CLI's `tools/call`. */
interface Bridged {
  readonly call: ToolCall
  /** the model's own `tool_use` id, which the CLI's `tools/call` names */
  readonly modelId: string
  requested: boolean
  /** the JSON-RPC id of the CLI's `tools/call`, which a `notifications/cancelled` names */
  rpcId?: McpMessage['id']
  /** the client's result, kept until the CLI asks */
  result?: ToolResult
  /** the CLI asked: answering it lets the CLI go on */
  answer?: (result: ToolResult) => void
}

type Event = { type?: string; index?: number; message?: { model?: string; usage?: Record<string, number> }; delta?: { type?: string; text?: string; stop_reason?: string }; usage?: Record<string, number> }

const STOP_REASONS = new Set(['end_turn', 'max_tokens', 'refusal'])

export class ClaudeToolBridge implements ToolBridge {
  readonly #child: ClaudeProcess
  readonly #control: ClaudeControl
  readonly #options: ClaudeBridgeOptions
  readonly #toolNames: ReadonlySet<string>
  readonly #calls: PendingCalls
  readonly #step = new StepChannel()
  /** calls not yet answered to the CLI, by the model's id */
  readonly #byModelId = new Map<string, Bridged>()
  /** the calls of the model message under way */
  #messageCalls: Bridged[] = []
  #usage: StepUsage | undefined
  #model: string | undefined
  /** text was written in this step: a later model message of the same step starts a new paragraph */
  #wrote = false
  #paragraph = false
  #turn = false
  #closed: OrchestratorError | undefined

  private constructor(child: ClaudeProcess, options: ClaudeBridgeOptions) {
    this.#child = child
    this.#options = options
    this.#toolNames = new Set(options.tools.map((t) => t.name))
    this.#calls = new PendingCalls(options.toolResultTimeoutMs, (call) => {
      void this.close(`no result for ${call.id} within ${options.toolResultTimeoutMs} ms`)
    })
    // every line the CLI prints is a sign of life (thinking and a tool call's input stream no text), but for its
    // keep-alive: that says the process runs, which a silent step is exactly what puts in doubt
    this.#control = new ClaudeControl(child, {
      message: (line) => {
        if (line.type !== 'keep_alive') this.#step.alive()
        this.#onLine(line)
      },
      mcp: (server, message) => {
        this.#step.alive()
        return this.#onMcp(server, message)
      },
      stray: (line) => {
        this.#step.alive()
        options.log?.('claude-code printed a line that is not JSON', { line })
      },
    }, options.maxLineBytes ?? 64 * 1024 * 1024)
    void child.closed.then(({ code, signal }) => this.#end(new OrchestratorError('AGYC_UPSTREAM_FAILED', child.describeExit(code, signal))))
  }

  /**
   * Binds a CLI started with `claudeBridgeArgs()` (and CLAUDE_BRIDGE_ENV) to a conversation: our MCP server and the
   * system prompt go in the `initialize` request. The process may have been started ahead: it then answers in ~60 ms
   * instead of ~550 ms. Kills it when the handshake fails.
   */
  static async open(child: ClaudeProcess, options: ClaudeBridgeOptions): Promise<ClaudeToolBridge> {
    const bridge = new ClaudeToolBridge(child, options)
    const append = [options.appendSystem, longDescriptions(options.tools)].filter(Boolean).join('\n\n')
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        bridge.#control.request({
          subtype: 'initialize',
          sdkMcpServers: [CLAUDE_BRIDGE_SERVER],
          // on stdin rather than argv: a client's system prompt with its tools' long descriptions can pass 128 KB
          ...(options.system !== undefined ? { systemPrompt: [options.system] } : {}),
          ...(append ? { appendSystemPrompt: append } : {}),
        }),
        new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer to initialize within ${options.startTimeoutMs} ms`)), options.startTimeoutMs) }),
      ])
    } catch (err) {
      const error = bridge.#closed ?? new OrchestratorError('AGYC_UPSTREAM_FAILED', `claude-code: ${(err as Error).message}`)
      await bridge.#end(error)
      throw error
    } finally {
      clearTimeout(timer)
    }
    return bridge
  }

  get pid(): number | undefined {
    return this.#child.pid
  }

  get pending(): readonly string[] {
    return this.#calls.ids
  }

  start(prompt: Prompt, onText: TextSink, onAlive?: AliveSink): Promise<Step> {
    if (this.#closed) return Promise.reject(this.#closed)
    if (this.#turn) return Promise.reject(new OrchestratorError('AGYC_INTERNAL', 'claude-code: a turn is under way in this conversation'))
    this.#turn = true
    const step = this.#step.wait(onText, onAlive)
    this.#control.send({ type: 'user', message: { role: 'user', content: claudeContent(prompt) }, parent_tool_use_id: null })
    return step
  }

  resolve(id: string, result: ToolResult): boolean {
    return this.#closed === undefined && this.#calls.resolve(id, result)
  }

  next(onText: TextSink, onAlive?: AliveSink): Promise<Step> {
    if (this.#closed) return Promise.reject(this.#closed)
    return this.#step.wait(onText, onAlive)
  }

  /** Answers what is pending with an error, then ends the process (its conversation is no use to anyone else). */
  close(reason = 'the conversation was closed'): Promise<void> {
    return this.#end(new OrchestratorError('AGYC_CANCELLED', `claude-code: ${reason}`))
  }

  async #end(error: OrchestratorError): Promise<void> {
    if (this.#closed === undefined) {
      this.#closed = error
      const reason = error.message.replace(/^claude-code: /, '')
      this.#calls.answerAll({ content: `The call was abandoned: ${reason}.`, is_error: true })
      this.#step.settle(error)
      this.#control.close(error)
      this.#options.onClosed?.(reason)
    }
    await this.#child.kill()
  }

  #onMcp(server: string, message: McpMessage): unknown {
    if (server !== CLAUDE_BRIDGE_SERVER) throw Object.assign(new Error(`no MCP server ${server}`), { code: -32601 })
    switch (message.method) {
      case 'initialize':
        return mcpServerInfo(message.params?.protocolVersion)
      case 'tools/list':
        return { tools: this.#options.tools.map(toMcpTool) }
      case 'tools/call':
        return this.#onToolCall(message.params ?? {}, message.id)
      case 'ping':
        return {}
      case 'notifications/cancelled': {
        // the CLI stopped waiting (an interrupt): the client's result, if it comes, is kept for nobody
        const requestId = message.params?.requestId
        for (const entry of this.#byModelId.values()) if (entry.rpcId === requestId) entry.answer = undefined
        return undefined
      }
      default:
        if (message.method?.startsWith('notifications/')) return undefined
        throw Object.assign(new Error(`method ${message.method} is not offered`), { code: -32601 })
    }
  }

  /** The CLI runs one of the client's tools: its answer waits for the client's result (or the deadline). */
  #onToolCall(params: Record<string, unknown>, rpcId: McpMessage['id']): Promise<object> {
    const meta = params._meta as Record<string, unknown> | undefined
    const modelId = typeof meta?.['claudecode/toolUseId'] === 'string' ? meta['claudecode/toolUseId'] : undefined
    const name = clientName(String(params.name))
    // a CLI that does not say which block it runs: the first call of that name it has not asked for yet
    let entry = modelId !== undefined ? this.#byModelId.get(modelId) : [...this.#byModelId.values()].find((e) => !e.requested && e.call.name === name)
    // asked before its `assistant` line came (not seen with 2.1.197): it joins the message under way
    entry ??= this.#register(modelId ?? `unnamed-${this.#byModelId.size}`, name, params.arguments ?? {})
    entry.requested = true
    entry.rpcId = rpcId
    const bridged = entry
    return new Promise((resolve) => {
      const answer = (result: ToolResult): void => {
        this.#byModelId.delete(bridged.modelId)
        resolve(toMcpResult(result))
      }
      if (bridged.result) answer(bridged.result)
      else bridged.answer = answer
    })
  }

  #register(modelId: string, name: string, input: unknown): Bridged {
    const entry: Bridged = { call: { id: mintToolUseId(), name, input }, modelId, requested: false }
    this.#byModelId.set(modelId, entry)
    this.#messageCalls.push(entry)
    return entry
  }

  #onLine(line: StreamLine): void {
    // a subagent's turns (no Task tool is offered, so none is expected)
    if (line.parent_tool_use_id) return
    switch (line.type) {
      case 'stream_event':
        return this.#onEvent((line.event ?? {}) as Event)
      case 'assistant': {
        const message = line.message as { id?: string; content?: unknown } | undefined
        const content = Array.isArray(message?.content) ? message.content as { type?: string; id?: string; name?: string; input?: unknown }[] : []
        for (const block of content) {
          if (block?.type !== 'tool_use' || typeof block.id !== 'string') continue
          const name = clientName(String(block.name))
          // a tool the client does not have: the CLI answers it with an error itself and goes on
          if (!this.#toolNames.has(name) || this.#byModelId.has(block.id)) continue
          this.#register(block.id, name, block.input ?? {})
        }
        return
      }
      case 'system':
        if (line.subtype === 'api_retry') this.#options.log?.('claude-code retries its API call', { status: line.error_status, attempt: line.attempt })
        return
      case 'result':
        return this.#onResult(line)
      default:
        return
    }
  }

  #onEvent(event: Event): void {
    switch (event.type) {
      case 'message_start': {
        if (typeof event.message?.model === 'string') this.#model = event.message.model
        const u = event.message?.usage ?? {}
        this.#usage = addUsage(this.#usage, u.input_tokens ?? 0, 0, u.cache_read_input_tokens ?? 0)
        this.#paragraph = this.#wrote
        this.#messageCalls = []
        return
      }
      case 'content_block_delta':
        if (event.delta?.type !== 'text_delta' || typeof event.delta.text !== 'string') return
        if (this.#paragraph) this.#step.text('\n\n')
        this.#paragraph = false
        this.#wrote = true
        this.#step.text(event.delta.text)
        return
      case 'message_delta':
        // one message_delta per model message, with the message's output tokens
        if (typeof event.usage?.output_tokens === 'number') this.#usage = addUsage(this.#usage, 0, event.usage.output_tokens, 0)
        return
      case 'message_stop': {
        const calls = this.#messageCalls
        this.#messageCalls = []
        if (calls.length === 0) return
        for (const entry of calls) {
          this.#calls.park(entry.call, (result) => {
            if (entry.answer) entry.answer(result)
            else entry.result = result
          })
        }
        this.#settle({ kind: 'tool_use', calls: calls.map((e) => e.call) })
        return
      }
      default:
        return
    }
  }

  #onResult(line: StreamLine): void {
    this.#turn = false
    this.#messageCalls = []
    if (this.#closed) return
    if (line.is_error === true) {
      const words = typeof line.result === 'string' ? line.result : Array.isArray(line.errors) ? line.errors.join('; ') : String(line.subtype)
      this.#usage = undefined
      this.#wrote = false
      this.#step.settle(cliError('claude-code', words, typeof line.api_error_status === 'number' ? line.api_error_status : undefined))
      return
    }
    const stop = typeof line.stop_reason === 'string' && STOP_REASONS.has(line.stop_reason) ? line.stop_reason as 'end_turn' : 'end_turn'
    this.#settle({ kind: 'end', stopReason: stop })
  }

  #settle(step: { kind: 'tool_use'; calls: ToolCall[] } | { kind: 'end'; stopReason: 'end_turn' | 'max_tokens' | 'refusal' }): void {
    const usage = this.#usage
    this.#usage = undefined
    this.#wrote = false
    this.#paragraph = false
    this.#step.settle({ ...step, ...(usage ? { usage } : {}), ...(this.#model ? { model: this.#model } : {}) })
  }
}

function addUsage(sum: StepUsage | undefined, input: number, output: number, cacheRead: number): StepUsage {
  return {
    input_tokens: (sum?.input_tokens ?? 0) + input,
    output_tokens: (sum?.output_tokens ?? 0) + output,
    cache_read_input_tokens: (sum?.cache_read_input_tokens ?? 0) + cacheRead,
  }
}
