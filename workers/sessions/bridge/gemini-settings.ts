/**
 * Gemini CLI with its own tools off, for bridged sessions only. Gemini reads settings per ACP session from the
 * session's working directory (`<cwd>/.gemini/settings.json`, workspace settings, honoured in a trusted folder:
 * GEMINI_CLI_TRUST_WORKSPACE=true), so bridged sessions get a folder of their own whose settings exclude every
 * built-in, while agent-mode sessions of the same process keep theirs.
 *
 * `tools.exclude`, never `tools.core: []`, which drops MCP tools too (gemini-cli#28361). Careful: an MCP tool is
 * excluded when its name WITHOUT the `mcp_<server>_` prefix is in the list (ToolRegistry.isActiveTool), so a
 * client's tool named `read_file` would vanish too: such a tool is offered under another name (exposedToolNames).
 */
import { join } from 'node:path'
import { privateDir, writePrivateFile } from '../../../src/config/state-dir.ts'

/**
 * Every built-in of Gemini CLI 0.61 (ALL_BUILTIN_TOOL_NAMES, the legacy alias `search_file_content`, and the tools
 * registered beside them: background shells, memory, sub-agents). A name a version does not have is harmless; a
 * new built-in a later version adds would show up in the model's tools (the test checks the exact list).
 */
export const GEMINI_BUILTIN_TOOLS: readonly string[] = [
  'glob', 'write_todos', 'write_file', 'google_web_search', 'web_fetch', 'replace', 'run_shell_command', 'grep_search',
  'search_file_content', 'read_many_files', 'read_file', 'list_directory', 'activate_skill', 'ask_user',
  'tracker_create_task', 'tracker_update_task', 'tracker_get_task', 'tracker_list_tasks', 'tracker_add_dependency',
  'tracker_visualize', 'get_internal_docs', 'enter_plan_mode', 'exit_plan_mode', 'update_topic', 'complete_task',
  'invoke_agent', 'read_mcp_resource', 'list_mcp_resources', 'list_background_processes', 'read_background_output',
  'save_memory', 'codebase_investigator', 'cli_help', 'browser_agent', 'take_snapshot',
]

const BUILTIN = new Set(GEMINI_BUILTIN_TOOLS)

/** The folder bridged sessions run in, inside the account's state directory, with the settings that turn built-ins off. */
export function prepareBridgeWorkspace(stateDir: string, serverName: string, name = 'bridge'): string {
  const dir = privateDir(stateDir, name)
  // mcp.allowed: the MCP servers of the account's own settings (a user's) stay out of bridged sessions
  const settings = { tools: { exclude: GEMINI_BUILTIN_TOOLS }, mcp: { allowed: [serverName] } }
  writePrivateFile(join(privateDir(dir, '.gemini'), 'settings.json'), `${JSON.stringify(settings, null, 2)}\n`)
  return dir
}

/**
 * The name each client tool is offered under on our MCP server: its own, unless the exclusion list above would
 * drop it; then `client_<name>` (and a number if even that is taken). Gemini shows the model `mcp_<server>_<name>`;
 * calls come back with the name offered here, mapped back to the client's.
 */
export function exposedToolNames(clientNames: readonly string[]): Map<string, string> {
  const taken = new Set(clientNames.filter((n) => !BUILTIN.has(n)))
  const exposed = new Map<string, string>()
  for (const name of clientNames) {
    let offered = name
    if (BUILTIN.has(name)) {
      offered = `client_${name}`
      for (let i = 2; taken.has(offered) || BUILTIN.has(offered); i++) offered = `client_${name}_${i}`
      taken.add(offered)
    }
    exposed.set(name, offered)
  }
  return exposed
}
