/**
 * `claude-code`: Claude Code as an account (docs/agent-clis.md). A process per request, started ahead of time (`prewarm`),
 * because its stream-json input mode is one conversation per process: each request gets a fresh process and so an
 * independent conversation. It runs
 *
 *     claude -p --input-format stream-json --output-format stream-json --verbose --include-partial-messages
 *            --no-session-persistence [--model M] [--append-system-prompt S] [extraArgs…]
 *
 * and waits on stdin; the request arrives as one `{"type":"user",…}` line (the prompt's text, and the request's base64
 * images as image blocks), then EOF, so the process ends after its answer. A prompt never becomes an argument (a
 * prompt starting with `-` would be read as a flag).
 */
import { OrchestratorError } from '../../src/errors.ts'
import type { Answer } from './answer.ts'
import { cliError } from './agent/cli-errors.ts'
import { createExecSession, type ExecConfig, type ExecReader } from './exec.ts'
import { presetSpec, unavailableSession } from './agent/preset.ts'
import { claudeContent } from './agent/prompt-input.ts'
import { renderPrompt } from './agent/transcript.ts'
import { summariseTool } from './agent/tool-summary.ts'
import { withToolBridge } from './bridge/bridged-session.ts'
import { CLAUDE_BRIDGE_ENV } from './bridge/claude-mcp.ts'
import { BridgeConversations } from './bridge/conversations.ts'
import { claudeBridge } from './bridge/openers.ts'
import type { Session, SessionContext } from './types.ts'

type ClaudeCodeConfig = Extract<SessionContext['account']['session'], { kind: 'claude-code' }>

const STOP_REASONS = new Set(['end_turn', 'max_tokens', 'stop_sequence', 'pause_turn', 'refusal'])

export function createClaudeCodeSession(context: SessionContext): Session {
  const config = context.account.session as ClaudeCodeConfig
  const args = ['-p', '--input-format', 'stream-json', '--output-format', 'stream-json', '--verbose', '--include-partial-messages', '--no-session-persistence']
  if (config.model) args.push('--model', config.model)
  if (config.systemPrompt) args.push('--append-system-prompt', config.systemPrompt)
  const spec = presetSpec(context, config, args, {
    ANTHROPIC_BASE_URL: config.baseUrl,
    ANTHROPIC_API_KEY: config.apiKey,
    ANTHROPIC_AUTH_TOKEN: config.authToken,
    // its own retry loop would hide a 429 from our failover for seconds (docs/agent-clis.md)
    CLAUDE_CODE_MAX_RETRIES: String(config.maxRetries),
    // for bridged conversations (the client's tools under their own names); it touches nothing else
    ...(config.tools !== 'agent' ? CLAUDE_BRIDGE_ENV : {}),
  })
  if (typeof spec === 'string') return unavailableSession(context, spec)
  const exec: ExecConfig = {
    kind: 'exec', command: spec.command, args: [...spec.args], env: { ...spec.env }, killGraceMs: spec.killGraceMs, input: 'prompt', output: 'events',
    idleTimeoutMs: config.idleTimeoutMs, maxOutputBytes: config.maxOutputBytes,
    // "client": every request is bridged, a process started ahead for the agent mode would wait for nothing
    prewarm: config.tools === 'client' ? 0 : config.prewarm,
  }
  const agent = createExecSession(context, {
    config: exec,
    workDir: spec.workDir,
    what: 'claude-code',
    dialect: {
      input: (req) => {
        const content = claudeContent(renderPrompt(req.request, 'claude-code', { images: true }))
        return `${JSON.stringify({ type: 'user', message: { role: 'user', content } })}\n`
      },
      reader: (answer) => claudeReader(answer, context),
    },
  })
  if (config.tools === 'agent') return agent
  // a bridged conversation is a process of its own (bridge/claude-tools.ts), `prewarm` of them started ahead
  // (bridge/claude-warm.ts): with "client" from the start, with "auto" once the account has bridged a conversation,
  // so that an account only ever used without tools does not hold them (~150 MB each)
  const bridge = claudeBridge(context, config, spec)
  const conversations = new BridgeConversations(bridge, {
    toolResultTimeoutMs: config.toolResultTimeoutMs, idleTimeoutMs: config.idleTimeoutMs, model: config.model, emit: (event) => context.emit(event),
  })
  return withToolBridge(agent, {
    setting: config.tools, conversations,
    ...(config.tools === 'client' ? { start: () => bridge.keepWarm() } : {}),
    stop: () => bridge.stop(),
  })
}

interface StreamJson {
  type?: unknown
  subtype?: unknown
  event?: { type?: unknown; message?: { model?: unknown }; delta?: { type?: unknown; text?: unknown } }
  message?: { model?: unknown; content?: unknown }
  parent_tool_use_id?: unknown
  is_error?: unknown
  api_error_status?: unknown
  result?: unknown
  errors?: unknown
  stop_reason?: unknown
  usage?: Record<string, unknown>
  [k: string]: unknown
}

/**
 * Reads `--output-format stream-json`: `stream_event` lines carry the API's own stream events (text deltas go out as
 * printed; a new assistant message after text starts a new paragraph), `assistant` lines the finished blocks (its
 * tool calls are summarised into the text), and the `result` line ends the answer with the CLI's token counts, or
 * its error (`is_error`, with `api_error_status` when the API answered one: `subtype` stays "success").
 */
function claudeReader(answer: Answer, context: SessionContext): ExecReader {
  let wrote = false
  let paragraph = false
  let failure: OrchestratorError | undefined
  let done = false
  const text = (piece: string): void => {
    if (paragraph && wrote) answer.textPiece('\n\n')
    paragraph = false
    answer.textPiece(piece)
    wrote = true
  }
  return {
    line(raw) {
      const line = raw as StreamJson
      // a subagent's own turns: its tool call in the parent already summarises it
      if (line.parent_tool_use_id) return
      switch (line.type) {
        case 'stream_event': {
          const event = line.event
          if (event?.type === 'message_start') {
            if (typeof event.message?.model === 'string') answer.event({ type: 'message_start', message: { model: event.message.model } })
            paragraph = true
          } else if (event?.type === 'content_block_delta' && event.delta?.type === 'text_delta' && typeof event.delta.text === 'string') {
            text(event.delta.text)
          }
          return
        }
        case 'assistant': {
          const content = Array.isArray(line.message?.content) ? line.message.content as { type?: unknown; name?: unknown; input?: unknown }[] : []
          for (const block of content) {
            if (block?.type !== 'tool_use') continue
            paragraph = true
            text(summariseTool(String(block.name), block.input))
            paragraph = true
            context.emit({ kind: 'log', level: 'info', msg: 'agent tool call', fields: { tool: String(block.name) } })
          }
          return
        }
        case 'system':
          if (line.subtype === 'api_retry') context.emit({ kind: 'log', level: 'warn', msg: 'claude-code retries its API call', fields: { status: line.error_status, attempt: line.attempt } })
          return
        case 'result': {
          done = true
          if (line.is_error === true) {
            const words = typeof line.result === 'string' ? line.result : Array.isArray(line.errors) ? line.errors.join('; ') : String(line.subtype)
            failure = cliError('claude-code', words, typeof line.api_error_status === 'number' ? line.api_error_status : undefined)
            return
          }
          if (!wrote && typeof line.result === 'string' && line.result) text(line.result)
          const stop = typeof line.stop_reason === 'string' && STOP_REASONS.has(line.stop_reason) ? line.stop_reason : 'end_turn'
          const u = line.usage ?? {}
          const usage: Record<string, number> = {}
          for (const key of ['input_tokens', 'output_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens']) {
            if (typeof u[key] === 'number') usage[key] = u[key]
          }
          answer.event({ type: 'message_delta', delta: { stop_reason: stop }, usage })
          return
        }
        default:
          return
      }
    },
    end(code, signal, child) {
      if (failure) throw failure
      if (!done) {
        // no result line: it died, or refused before starting (a bad flag, no login); its stderr says why
        throw cliError('claude-code', child.describeExit(code, signal))
      }
      return answer.completion()
    },
  }
}
