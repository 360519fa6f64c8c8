/**
 * `gemini-cli`: Gemini CLI as an account (docs/agent-clis.md). One long-lived `gemini --acp -m MODEL` per account, speaking
 * the Agent Client Protocol (JSON-RPC 2.0 over stdio): `initialize`, `authenticate`, then per request a fresh
 * `session/new` and one `session/prompt`. Text arrives as `session/update` notifications (`agent_message_chunk`), the
 * prompt's answer carries the stop reason and the CLI's token counts (`_meta.quota.token_count`).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { OrchestratorError } from '../../src/errors.ts'
import { loggedIn, writeSettings } from '../../src/config/presets.ts'
import { writePrivateFile } from '../../src/config/state-dir.ts'
import { appendText, createAgentServerSession, type AgentProtocol, type TurnContext } from './agent/agent-server.ts'
import { cliError } from './agent/cli-errors.ts'
import { fields, RpcError, stringOf, type JsonRpcPeer } from './agent/json-rpc.ts'
import { presetSpec, unavailableSession } from './agent/preset.ts'
import { acpPrompt } from './agent/prompt-input.ts'
import { summariseTool } from './agent/tool-summary.ts'
import { permissionOptions } from './bridge/gemini-acp.ts'
import { withToolBridge } from './bridge/bridged-session.ts'
import { BridgeConversations } from './bridge/conversations.ts'
import type { AcpSessionListener } from './bridge/gemini-acp.ts'
import { prepareBridgeWorkspace } from './bridge/gemini-settings.ts'
import { MCP_SERVER_NAME } from './bridge/gemini-tools.ts'
import { geminiBridge } from './bridge/openers.ts'
import { SharedCli } from './bridge/shared-cli.ts'
import type { Session, SessionContext } from './types.ts'

type GeminiConfig = Extract<SessionContext['account']['session'], { kind: 'gemini-cli' }>

const STOP_REASONS: Record<string, string> = { end_turn: 'end_turn', max_tokens: 'max_tokens', refusal: 'refusal', max_turn_requests: 'end_turn' }

export function createGeminiCliSession(context: SessionContext): Session {
  const config = context.account.session as GeminiConfig
  const stateDir = context.account.stateDir
  const spec = presetSpec(context, config, ['--acp', '-m', config.model], {
    GOOGLE_GEMINI_BASE_URL: config.baseUrl,
    GEMINI_API_KEY: config.apiKey,
  })
  if (typeof spec === 'string') return unavailableSession(context, spec)
  // With neither a key nor a login on disk, ACP's `authenticate` starts Google's browser sign-in and waits for it:
  // no handshake ever comes, and the account would restart every startTimeoutMs while requests wait in the queue.
  // Say why once instead (a key or Google credentials given through `env` are left to the CLI).
  const id = context.account.id
  const keyInEnv = ['GEMINI_API_KEY', 'GOOGLE_API_KEY', 'GOOGLE_APPLICATION_CREDENTIALS', 'GOOGLE_GENAI_USE_VERTEXAI'].some((name) => name in config.env)
  if (authMethod(config, stateDir) === 'oauth-personal' && !loggedIn('gemini-cli', stateDir) && !keyInEnv) {
    return unavailableSession(context, `gemini-cli is not logged in (no login in ${stateDir}) and has no apiKey: run "agyc accounts login ${id}", then reset the account (POST /admin/accounts/${id}/reset) or restart the orchestrator`)
  }
  // the tool bridge's ACP sessions run on the same process, in a folder whose settings turn the built-ins off
  const bridged = new SharedCli<AcpSessionListener>()
  const agent = createAgentServerSession(context, {
    what: 'gemini-cli',
    spec,
    protocol: acp(config, stateDir, bridged),
    startTimeoutMs: config.startTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    maxLineBytes: config.maxLineBytes,
    restart: config.restart,
    prepare() {
      writeSettings(config, stateDir)
      if (config.systemPrompt !== undefined) writeMemory(stateDir, config.systemPrompt)
      if (config.tools !== 'agent') prepareBridgeWorkspace(stateDir, MCP_SERVER_NAME, BRIDGE_DIR)
    },
    upstream: bridged,
  })
  if (config.tools === 'agent') return agent
  const preset = geminiBridge(bridged, join(stateDir, BRIDGE_DIR))
  const conversations = new BridgeConversations(preset, {
    toolResultTimeoutMs: config.toolResultTimeoutMs, idleTimeoutMs: config.idleTimeoutMs, model: config.model, emit: (event) => context.emit(event),
  })
  return withToolBridge(agent, { setting: config.tools, conversations, stop: () => preset.stop() })
}

/** the working directory of bridged sessions, apart from the agent's `work/` */
const BRIDGE_DIR = 'bridge'

/** the account's system prompt becomes its global memory file, which Gemini CLI adds to its own system prompt */
function writeMemory(stateDir: string, text: string): void {
  writePrivateFile(join(stateDir, '.gemini', 'GEMINI.md'), `${text}\n`)
}

/** the auth method the settings chose (a login records it there), or the API key when the config gives one */
function authMethod(config: GeminiConfig, stateDir: string): string {
  if (config.apiKey) return 'gemini-api-key'
  try {
    const settings = JSON.parse(readFileSync(join(stateDir, '.gemini', 'settings.json'), 'utf8')) as { security?: { auth?: { selectedType?: unknown } } }
    const chosen = settings.security?.auth?.selectedType
    if (typeof chosen === 'string') return chosen
  } catch { /* no settings: the default login */ }
  return 'oauth-personal'
}

interface Running {
  readonly context: TurnContext
  wrote: boolean
  paragraph: boolean
}

function acp(config: GeminiConfig, stateDir: string, bridged: SharedCli<AcpSessionListener>): AgentProtocol {
  const sessions = new Map<string, Running>()
  // what the process said at `initialize` (a restart asks again): ACP lets an agent refuse images in a prompt. Unknown
  // before the first handshake, when no request can reach the agent anyway (it is not up: that is the answer then)
  let images: boolean | undefined

  return {
    tagged: true,
    async handshake(peer: JsonRpcPeer) {
      const init = await peer.request<{ agentCapabilities?: { promptCapabilities?: { image?: unknown } } }>('initialize', {
        protocolVersion: 1, clientCapabilities: { fs: { readTextFile: false, writeTextFile: false }, terminal: false },
      })
      images = init?.agentCapabilities?.promptCapabilities?.image === true
      try {
        await peer.request('authenticate', { methodId: authMethod(config, stateDir) })
      } catch (err) {
        throw new Error(`gemini-cli could not authenticate (log in with "agyc accounts login", or set apiKey): ${(err as Error).message}`)
      }
    },
    imagesRefused() {
      return images !== false ? undefined : 'gemini-cli cannot take this image: its agent did not offer image input (promptCapabilities.image) when it started'
    },
    turn(context) {
      let sessionId: string | undefined
      let cancelled = false
      const done = (async () => {
        try {
          const created = await context.peer.request<{ sessionId: string }>('session/new', { cwd: context.cwd, mcpServers: [] })
          sessionId = created.sessionId
          if (cancelled) throw new OrchestratorError('AGYC_CANCELLED', 'the request was cancelled')
          const run: Running = { context, wrote: false, paragraph: false }
          sessions.set(sessionId, run)
          context.touch()
          const result = await context.peer.request<{ stopReason?: string; _meta?: { quota?: { token_count?: { input_tokens?: number; output_tokens?: number }; model_usage?: { model?: string }[] } } }>(
            'session/prompt', { sessionId, prompt: acpPrompt(context.prompt) })
          if (result.stopReason === 'cancelled') throw new OrchestratorError('AGYC_CANCELLED', 'the request was cancelled')
          const quota = result._meta?.quota
          const model = quota?.model_usage?.[0]?.model ?? config.model
          context.answer.event({ type: 'message_start', message: { model } })
          const tokens = quota?.token_count
          context.answer.event({
            type: 'message_delta',
            delta: { stop_reason: STOP_REASONS[result.stopReason ?? ''] ?? 'end_turn' },
            ...(typeof tokens?.input_tokens === 'number' && typeof tokens.output_tokens === 'number' ? { usage: { input_tokens: tokens.input_tokens, output_tokens: tokens.output_tokens } } : {}),
          })
          return context.answer.completion()
        } catch (err) {
          if (err instanceof RpcError) {
            // ACP errors carry the upstream's HTTP status as their code (429 "…Suggested retry after 42s.")
            throw cliError('gemini-cli', err.message, err.code !== undefined && err.code >= 400 && err.code < 600 ? err.code : undefined)
          }
          throw err
        } finally {
          if (sessionId) sessions.delete(sessionId)
        }
      })()
      return {
        done,
        cancel() {
          cancelled = true
          if (sessionId) context.peer.notify('session/cancel', { sessionId })
        },
      }
    },
    notification(method, params) {
      if (method !== 'session/update') return
      const sessionId = stringOf(params.sessionId)
      const listener = bridged.listener(sessionId)
      if (listener) return listener.update(fields(params.update))
      const run = sessionId === undefined ? undefined : sessions.get(sessionId)
      if (!run) return
      run.context.touch()
      const update = fields(params.update)
      switch (update.sessionUpdate) {
        case 'agent_message_chunk': {
          const content = fields(update.content)
          if (content.type === 'text' && typeof content.text === 'string') appendText(run, content.text)
          return
        }
        case 'tool_call':
          run.paragraph = true
          appendText(run, summariseTool(String(update.kind ?? 'tool'), update.title ?? update.rawInput))
          run.paragraph = true
          return
        default:
          return // thoughts, plans, tool progress: the tool_call line already says what the agent did
      }
    },
    request(method, params) {
      const listener = bridged.listener(params.sessionId)
      if (listener) return listener.request(method, params)
      if (method === 'session/request_permission') {
        // nobody is there to approve: refuse once, the agent carries on without the tool
        const options = permissionOptions(params)
        const reject = options.find((o) => o.kind === 'reject_once') ?? options.find((o) => o.kind?.startsWith('reject'))
        return { outcome: reject ? { outcome: 'selected', optionId: reject.optionId } : { outcome: 'cancelled' } }
      }
      throw new Error(`method ${method} is not offered by this client`)
    },
  }
}
