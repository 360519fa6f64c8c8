/**
 * The agent's own tool activity, as the client sees it: one bracketed line in the answer's text per tool call, e.g.
 * `[tool Bash: {"command":"ls"}]`. It is never a `tool_use` block: the client did not offer that tool and must not be
 * asked to run it; and never dropped: the answer may only make sense next to what the agent did.
 */
const MAX_INPUT_CHARS = 200

export function summariseTool(name: string, input: unknown): string {
  let detail = ''
  if (typeof input === 'string') detail = input
  else if (input !== undefined && input !== null) {
    try { detail = JSON.stringify(input) } catch { detail = String(input) }
  }
  if (detail === '{}') detail = ''
  if (detail.length > MAX_INPUT_CHARS) detail = `${detail.slice(0, MAX_INPUT_CHARS)}…`
  return detail ? `[tool ${name}: ${detail}]` : `[tool ${name}]`
}
