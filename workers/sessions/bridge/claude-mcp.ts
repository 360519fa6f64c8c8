/**
 * What the Claude Code bridge's in-process MCP server offers and answers, and how the CLI is started for it
 * (docs/notes/tool-bridge-claude.md). Pure: claude-tools.ts drives the process.
 */
import type { ClientTool, ToolResult } from './types.ts'

/** The name of our SDK MCP server inside the CLI: it prefixes the tools' permission rule (`mcp__client`). */
export const CLAUDE_BRIDGE_SERVER = 'client'

/**
 * For the CLI's environment (every claude-code account may have it: it only touches SDK MCP servers, which only the
 * bridge declares): the tools of an SDK server keep their own names instead of `mcp__<server>__<tool>`.
 */
export const CLAUDE_BRIDGE_ENV: Readonly<Record<string, string>> = { CLAUDE_AGENT_SDK_MCP_NO_PREFIX: '1' }

/** Claude Code cuts an MCP tool's description at 2048 characters (`… [truncated]`); longer ones go to the system prompt too. */
export const MCP_DESCRIPTION_LIMIT = 2048

/**
 * The CLI's arguments for a bridged conversation: one conversation on stdin/stdout, raw stream events (text deltas),
 * no built-in tool (`--tools ""`), no MCP server but ours (`--strict-mcp-config`: the account's own config is
 * ignored), and ours allowed without a permission prompt (without the rule every call is refused: "Claude requested
 * permissions to use get_weather, but you haven't granted it yet").
 */
export function claudeBridgeArgs(options: { model?: string; extraArgs?: readonly string[] } = {}): string[] {
  const args = [
    '-p', '--input-format', 'stream-json', '--output-format', 'stream-json', '--verbose', '--include-partial-messages',
    '--no-session-persistence', '--tools', '', '--strict-mcp-config', '--allowedTools', `mcp__${CLAUDE_BRIDGE_SERVER}`,
  ]
  if (options.model) args.push('--model', options.model)
  return [...args, ...(options.extraArgs ?? [])]
}

/** The answer to the CLI's MCP `initialize`: the protocol version it asked for, tools and nothing else. */
export function mcpServerInfo(protocolVersion: unknown): object {
  return { protocolVersion: protocolVersion ?? '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'agyc', version: '0.1.0' } }
}

/** The client's name for a tool the CLI names, whether or not it kept the `mcp__client__` prefix. */
export function clientName(name: string): string {
  const prefix = `mcp__${CLAUDE_BRIDGE_SERVER}__`
  return name.startsWith(prefix) ? name.slice(prefix.length) : name
}

/**
 * A client tool as an MCP tool. Read-only: the CLI then runs the calls of one message at once (it asks for them all
 * together instead of one after the other); nothing runs here anyway. Always loaded: never deferred behind the CLI's
 * tool search, whatever the number of tools.
 */
export function toMcpTool(tool: ClientTool): object {
  return {
    name: tool.name,
    description: tool.description ?? '',
    inputSchema: tool.input_schema,
    annotations: { readOnlyHint: true },
    _meta: { 'anthropic/alwaysLoad': true },
  }
}

/** Descriptions the CLI would cut, whole, for the system prompt. */
export function longDescriptions(tools: readonly ClientTool[]): string {
  const long = tools.filter((t) => (t.description ?? '').length > MCP_DESCRIPTION_LIMIT)
  if (long.length === 0) return ''
  const sections = long.map((t) => `<tool name="${t.name}">\n${t.description}\n</tool>`)
  return `The tool list cuts long descriptions. These are the full descriptions of the tools it cut:\n\n${sections.join('\n\n')}`
}

/** The client's `tool_result` as MCP's CallToolResult, block for block (the CLI turns them back into Anthropic blocks). */
export function toMcpResult(result: ToolResult): object {
  const content = typeof result.content === 'string'
    ? [{ type: 'text', text: result.content }]
    : result.content.map((b) => (b.type === 'text' ? { type: 'text', text: b.text } : { type: 'image', data: b.source.data, mimeType: b.source.media_type }))
  return { content: content.length > 0 ? content : [{ type: 'text', text: '' }], isError: result.is_error === true }
}
