/**
 * What the tool bridge reads of a Messages request (pure; docs/agent-clis.md, "The client's tools"): whether the
 * client's tools or the agent's own run it, the tools to offer, what `tool_choice` asks, and a continuation: the
 * `tool_result` blocks of the last user turn, as the results the parked CLI is waiting for.
 */
import { OrchestratorError } from '../../../src/errors.ts'
import type { MessagesRequest } from '../../../src/protocol/anthropic.ts'
import type { ClientTool, ResultBlock, ToolResult } from './types.ts'

export type ToolsSetting = 'auto' | 'client' | 'agent'

function refuse(path: string, why: string): never {
  throw new OrchestratorError('AGYC_INVALID_REQUEST', `${path}: ${why}`)
}

/**
 * "client": the request runs through the bridge; "agent": the CLI's own tools, as before the bridge. "auto" picks the
 * bridge when the request declares tools, or answers tool calls (a client's tool loop, even one that dropped its
 * `tools`: the agent's own tools would run in the orchestrator's sandbox, not where the client works).
 */
export function bridgeMode(setting: ToolsSetting, request: MessagesRequest): 'client' | 'agent' {
  if (setting !== 'auto') return setting
  if (Array.isArray(request.tools) && request.tools.length > 0) return 'client'
  const last = request.messages?.at(-1)
  const answersCalls = last?.role === 'user' && Array.isArray(last.content) && (last.content as { type?: unknown }[]).some((b) => b?.type === 'tool_result')
  return answersCalls ? 'client' : 'agent'
}

/**
 * The request's tools, as the CLI will offer them. Only custom tools (a name and a JSON schema) can be offered: an
 * Anthropic-defined tool (`bash_20250124`, `text_editor_…`, `web_search_…`) has a schema only Anthropic's API
 * knows, so the request is refused rather than served with a tool missing.
 */
export function clientTools(request: MessagesRequest, what: string): ClientTool[] {
  const tools: ClientTool[] = []
  ;(request.tools ?? []).forEach((raw, i) => {
    const tool = raw as { type?: unknown; name?: unknown; description?: unknown; input_schema?: unknown }
    if (tool.type !== undefined && tool.type !== null && tool.type !== 'custom') {
      refuse(`tools.${i}`, `the tool "${String(tool.name)}" (type ${String(tool.type)}) is one of Anthropic's own and cannot be offered through ${what}: declare it as a custom tool with an input_schema`)
    }
    if (!tool.input_schema || typeof tool.input_schema !== 'object') refuse(`tools.${i}.input_schema`, 'expected a JSON schema object')
    tools.push({
      name: String(tool.name),
      ...(typeof tool.description === 'string' ? { description: tool.description } : {}),
      input_schema: tool.input_schema as Record<string, unknown>,
    })
  })
  return tools
}

/** `tool_choice.type`: "auto" when absent */
export function toolChoice(request: MessagesRequest): string {
  const type = (request.tool_choice as { type?: unknown } | undefined)?.type
  return typeof type === 'string' ? type : 'auto'
}

/** The last user turn's `tool_result` blocks, by id, in order. Other blocks of that turn ride on the last result. */
export interface Continuation {
  readonly ids: readonly string[]
  readonly results: ReadonlyMap<string, ToolResult>
}

export function continuation(request: MessagesRequest, what: string): Continuation | undefined {
  const messages = request.messages ?? []
  const i = messages.length - 1
  const last = messages[i]
  if (last?.role !== 'user' || !Array.isArray(last.content)) return undefined
  const path = `messages.${i}.content`
  const blocks = last.content as { type?: unknown; tool_use_id?: unknown; content?: unknown; is_error?: unknown }[]
  const results = new Map<string, { content: ResultBlock[]; is_error: boolean }>()
  const extra: ResultBlock[] = []
  blocks.forEach((block, j) => {
    if (block?.type === 'tool_result' && typeof block.tool_use_id === 'string') {
      results.set(block.tool_use_id, { content: resultBlocks(block.content, `${path}.${j}.content`, what), is_error: block.is_error === true })
    } else extra.push(...resultBlocks([block], path, what, j))
  })
  if (results.size === 0) return undefined
  // text the client added beside its results (Claude Code's reminders, a user's note): the CLI is mid-turn and
  // takes no new user message, so it goes with the last result instead of being dropped
  if (extra.length > 0) [...results.values()].at(-1)!.content.push(...extra)
  return { ids: [...results.keys()], results }
}

/** a tool_result's content, or a block beside it, as text and image blocks; anything else is refused */
function resultBlocks(content: unknown, path: string, what: string, offset = 0): ResultBlock[] {
  if (content === undefined || content === null) return []
  if (typeof content === 'string') return content ? [{ type: 'text', text: content }] : []
  if (!Array.isArray(content)) refuse(path, 'expected a string or an array of content blocks')
  return (content as { type?: unknown; text?: unknown; source?: { type?: unknown; media_type?: unknown; data?: unknown } }[]).map((block, k) => {
    if (block?.type === 'text') return { type: 'text', text: String(block.text) }
    const source = block?.source
    if (block?.type === 'image' && source?.type === 'base64' && typeof source.media_type === 'string' && typeof source.data === 'string') {
      return { type: 'image', source: { type: 'base64', media_type: source.media_type, data: source.data } }
    }
    const why = block?.type === 'image' ? `${what} takes images as base64 data only (an image by URL or file id is not fetched)` : `a "${String(block?.type)}" block cannot be given to ${what} as a tool result (text and images only)`
    return refuse(`${path}.${k + offset}`, why)
  })
}
