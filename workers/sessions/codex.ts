/**
 * `codex`: Codex as an account (docs/agent-clis.md). One long-lived `codex app-server` per account, speaking JSON-RPC over
 * stdio without the `"jsonrpc"` field: `initialize` + `initialized`, then per request an ephemeral `thread/start` and
 * one `turn/start`. Text arrives as `item/agentMessage/delta`, token counts as `thread/tokenUsage/updated`, and the
 * turn ends with `turn/completed` (status completed, failed with its error, or interrupted).
 */
import { join } from 'node:path'
import { OrchestratorError, type Code } from '../../src/errors.ts'
import { CODEX_KEY_VAR, writeSettings } from '../../src/config/presets.ts'
import { privateDir } from '../../src/config/state-dir.ts'
import { appendText, createAgentServerSession, type AgentProtocol, type TurnContext } from './agent/agent-server.ts'
import { cliError, resetFromText } from './agent/cli-errors.ts'
import { fields, stringOf, type RpcParams } from './agent/json-rpc.ts'
import { presetSpec, unavailableSession } from './agent/preset.ts'
import { codexInput } from './agent/prompt-input.ts'
import { summariseTool } from './agent/tool-summary.ts'
import { withToolBridge } from './bridge/bridged-session.ts'
import type { ThreadListener } from './bridge/codex-app-server.ts'
import { BridgeConversations } from './bridge/conversations.ts'
import { codexBridge } from './bridge/openers.ts'
import { SharedCli } from './bridge/shared-cli.ts'
import type { Completion, Session, SessionContext } from './types.ts'
import { codeForStatus } from './upstream-errors.ts'

type CodexConfig = Extract<SessionContext['account']['session'], { kind: 'codex' }>

export function createCodexSession(context: SessionContext): Session {
  const config = context.account.session as CodexConfig
  const spec = presetSpec(context, config, ['app-server'], { [CODEX_KEY_VAR]: config.apiKey })
  if (typeof spec === 'string') return unavailableSession(context, spec)
  const stateDir = context.account.stateDir
  // the tool bridge's threads run on the same app-server, each with its own config (bridge/codex-tools.ts)
  const bridged = new SharedCli<ThreadListener>()
  const agent = createAgentServerSession(context, {
    what: 'codex',
    spec,
    protocol: appServer(config, bridged),
    startTimeoutMs: config.startTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    maxLineBytes: config.maxLineBytes,
    restart: config.restart,
    prepare: () => {
      writeSettings(config, stateDir)
      privateDir(stateDir, BRIDGE_DIR)
    },
    upstream: bridged,
  })
  if (config.tools === 'agent') return agent
  const preset = codexBridge(bridged, config, join(stateDir, BRIDGE_DIR))
  const conversations = new BridgeConversations(preset, {
    toolResultTimeoutMs: config.toolResultTimeoutMs, idleTimeoutMs: config.idleTimeoutMs, model: config.model, emit: (event) => context.emit(event),
  })
  return withToolBridge(agent, { setting: config.tools, conversations })
}

/** the working directory of bridged threads, apart from the agent's `work/` (nothing runs there) */
const BRIDGE_DIR = 'bridge'

interface TurnError { message?: string; codexErrorInfo?: unknown }

/** Codex's own error classes first (they say "usage limit" even when no HTTP status is known), then its words. */
export function codexError(error: TurnError | undefined): OrchestratorError {
  const message = error?.message ?? 'the turn failed'
  const info = error?.codexErrorInfo
  const named: Record<string, Code> = {
    usageLimitExceeded: 'AGYC_UPSTREAM_RATE_LIMITED', rateLimitExceeded: 'AGYC_UPSTREAM_RATE_LIMITED', sessionBudgetExceeded: 'AGYC_UPSTREAM_RATE_LIMITED',
    unauthorized: 'AGYC_UPSTREAM_AUTH', serverOverloaded: 'AGYC_UPSTREAM_OVERLOADED', modelNotFound: 'AGYC_UPSTREAM_NOT_FOUND',
    contextWindowExceeded: 'AGYC_UPSTREAM_REJECTED', badRequest: 'AGYC_UPSTREAM_REJECTED',
  }
  let code: Code | undefined = typeof info === 'string' ? named[info] : undefined
  if (!code && info && typeof info === 'object') {
    const status = (Object.values(info)[0] as { httpStatusCode?: unknown } | undefined)?.httpStatusCode
    if (typeof status === 'number') code = codeForStatus(status)
  }
  if (!code) return cliError('codex', message)
  const retryAfterS = code === 'AGYC_UPSTREAM_RATE_LIMITED' || code === 'AGYC_UPSTREAM_OVERLOADED' ? resetFromText(message) : undefined
  return new OrchestratorError(code, `codex: ${message}`, retryAfterS === undefined ? undefined : { retryAfterS })
}

/** a turn's `error` as Codex sends it (an object, else none) */
export function turnError(value: unknown): TurnError | undefined {
  if (value === null || typeof value !== 'object') return undefined
  const error = fields(value)
  return { message: stringOf(error.message), codexErrorInfo: error.codexErrorInfo }
}

interface Running {
  readonly context: TurnContext
  turnId?: string
  item?: string
  wrote: boolean
  paragraph: boolean
  usage?: Record<string, number>
  error?: TurnError
  settle(completion: Completion | Error): void
}

/** the agent's own actions, by item type, as one line each */
function describeItem(item: RpcParams): string | undefined {
  switch (item.type) {
    case 'commandExecution': return summariseTool('shell', item.command)
    case 'fileChange': return summariseTool('apply_patch', Array.isArray(item.changes) ? item.changes.map((c) => fields(c).path) : [])
    case 'mcpToolCall': return summariseTool(`${item.server}.${item.tool}`, item.arguments)
    case 'dynamicToolCall': return summariseTool(String(item.tool ?? 'tool'), item.arguments)
    case 'webSearch': return summariseTool('web_search', item.query)
    case 'imageGeneration': case 'imageView': case 'collabAgentToolCall': case 'subAgentActivity':
      return summariseTool(String(item.type), undefined)
    default: return undefined // messages, reasoning, plans, compaction: not actions
  }
}

function appServer(config: CodexConfig, bridged: SharedCli<ThreadListener>): AgentProtocol {
  const threads = new Map<string, Running>()

  return {
    tagged: false,
    async handshake(peer) {
      // the experimental API: without it thread/start ignores a bridged thread's dynamicTools (agent mode needs none)
      await peer.request('initialize', { clientInfo: { name: 'agyc', title: 'AGYC Orchestrator', version: '0.1.0' }, capabilities: { experimentalApi: true } })
      peer.notify('initialized', {})
    },
    turn(context) {
      let threadId: string | undefined
      let turnId: string | undefined
      let cancelled = false
      const { promise, resolve, reject } = Promise.withResolvers<Completion>()
      const done = (async () => {
        const started = await context.peer.request<{ thread: { id: string; model?: string } }>('thread/start', {
          ephemeral: true, cwd: context.cwd, approvalPolicy: 'never', sandbox: 'read-only',
          ...(config.model ? { model: config.model } : {}),
          ...(config.systemPrompt !== undefined ? { developerInstructions: config.systemPrompt } : {}),
        })
        threadId = started.thread.id
        if (cancelled) throw new OrchestratorError('AGYC_CANCELLED', 'the request was cancelled')
        const model = started.thread.model ?? config.model
        if (model) context.answer.event({ type: 'message_start', message: { model } })
        const run: Running = {
          context, wrote: false, paragraph: false,
          settle: (outcome) => (outcome instanceof Error ? reject(outcome) : resolve(outcome)),
        }
        threads.set(threadId, run)
        try {
          context.touch()
          const turn = await context.peer.request<{ turn: { id: string } }>('turn/start', { threadId, input: codexInput(context.prompt) })
          turnId = run.turnId = turn.turn.id
          if (cancelled) context.peer.request('turn/interrupt', { threadId, turnId }).catch(() => {})
          return await promise
        } finally {
          threads.delete(threadId)
          // an ephemeral thread leaves nothing on disk; unloading it frees the server's memory too
          context.peer.request('thread/unsubscribe', { threadId }).catch(() => {})
        }
      })()
      return {
        done,
        cancel() {
          cancelled = true
          if (threadId && turnId) context.peer.request('turn/interrupt', { threadId, turnId }).catch(() => {})
        },
      }
    },
    notification(method, params) {
      const threadId = stringOf(params.threadId)
      const listener = bridged.listener(threadId)
      if (listener) return listener.notification(method, params)
      const run = threadId === undefined ? undefined : threads.get(threadId)
      if (!run) return
      run.context.touch()
      switch (method) {
        case 'item/agentMessage/delta':
          if (run.item !== undefined && run.item !== stringOf(params.itemId)) run.paragraph = true
          run.item = stringOf(params.itemId)
          if (typeof params.delta === 'string') appendText(run, params.delta)
          return
        case 'item/started': {
          const line = describeItem(fields(params.item))
          if (!line) return
          run.paragraph = true
          appendText(run, line)
          run.paragraph = true
          return
        }
        case 'thread/tokenUsage/updated': {
          // the thread is this request's alone: its total is the request's usage
          const t = fields(fields(params.tokenUsage).total)
          if (typeof t.inputTokens === 'number' && typeof t.outputTokens === 'number') {
            const cached = typeof t.cachedInputTokens === 'number' ? t.cachedInputTokens : 0
            run.usage = { input_tokens: t.inputTokens, output_tokens: t.outputTokens, cache_read_input_tokens: cached }
          }
          return
        }
        case 'error':
          if (!params.willRetry) run.error = turnError(params.error)
          return
        case 'turn/completed': {
          const turn = fields(params.turn)
          if (turn.status === 'completed') {
            run.context.answer.event({ type: 'message_delta', delta: { stop_reason: 'end_turn' }, ...(run.usage ? { usage: run.usage } : {}) })
            run.settle(run.context.answer.completion())
          } else if (turn.status === 'interrupted') {
            run.settle(new OrchestratorError('AGYC_CANCELLED', 'the request was cancelled'))
          } else {
            run.settle(codexError(turnError(turn.error) ?? run.error))
          }
          return
        }
        default:
          return
      }
    },
    request(method, params) {
      const listener = bridged.listener(params.threadId)
      if (listener) return listener.request(method, params)
      // a bridged thread already closed: its call has nowhere to go
      if (method === 'item/tool/call') return { contentItems: [{ type: 'inputText', text: 'This conversation is closed.' }], success: false }
      // nobody is there to approve (and approval_policy is "never"): decline whatever is asked
      if (method === 'item/commandExecution/requestApproval' || method === 'item/fileChange/requestApproval') return { decision: 'decline' }
      if (method === 'execCommandApproval' || method === 'applyPatchApproval') return { decision: 'denied' }
      throw new Error(`method ${method} is not offered by this client`)
    },
  }
}
