/**
 * A Messages request as one prompt for an agent CLI, which takes text and nothing else (README, "What is translated").
 * A single user turn with no system text is passed as it is. Otherwise the system text and the earlier turns are
 * rendered as a tagged transcript ahead of the last user turn:
 *
 *     <system>
 *     …system text, then any role "system" messages…
 *     </system>
 *
 *     <transcript>
 *     <user>
 *     …
 *     </user>
 *     <assistant>
 *     …
 *     </assistant>
 *     </transcript>
 *
 *     …the last user turn…
 *
 * Text blocks are joined by newlines; thinking blocks of earlier assistant turns are left out (they are the model's
 * scratch work, not the conversation). Any other block (image, document, tool_use, tool_result…) cannot be given to
 * a CLI: the request is refused with a 400 naming the block, never passed on with a piece missing.
 */
import { OrchestratorError } from '../../../src/errors.ts'
import type { MessagesRequest } from '../../../src/protocol/anthropic.ts'

interface Block { type?: unknown; text?: unknown }

const SKIPPED = new Set(['thinking', 'redacted_thinking'])

function refuse(path: string, why: string): never {
  throw new OrchestratorError('AGYC_INVALID_REQUEST', `${path}: ${why}`)
}

function textOf(content: unknown, path: string, what: string, role: unknown): string {
  if (typeof content === 'string') return content
  const parts: string[] = []
  ;(content as Block[]).forEach((block, j) => {
    if (block?.type === 'text') parts.push(String(block.text))
    else if (!(role === 'assistant' && SKIPPED.has(String(block?.type)))) {
      refuse(`${path}.${j}`, `a "${String(block?.type)}" block cannot be given to ${what}, which takes text only`)
    }
  })
  return parts.join('\n')
}

export function renderPrompt(request: MessagesRequest, what: string): string {
  const choice = (request.tool_choice as { type?: unknown } | undefined)?.type
  if (choice === 'any' || choice === 'tool') refuse('tool_choice', `${what} cannot be made to call one of the request's tools`)
  const system: string[] = []
  if (request.system !== undefined) {
    const text = textOf(request.system, 'system', what, 'system')
    if (text) system.push(text)
  }
  const messages = request.messages ?? []
  let last = -1
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]?.role !== 'system') { last = i; break }
  }
  if (last < 0 || messages[last].role !== 'user') {
    refuse(`messages.${Math.max(last, 0)}.role`, `${what} answers a user turn: the conversation must end with one (an assistant prefill cannot be continued)`)
  }
  const turns: string[] = []
  let prompt = ''
  messages.forEach((message, i) => {
    const text = textOf(message.content, `messages.${i}.content`, what, message.role)
    if (message.role === 'system') {
      if (text) system.push(text)
    } else if (i === last) {
      prompt = text
    } else {
      turns.push(`<${String(message.role)}>\n${text}\n</${String(message.role)}>`)
    }
  })
  if (prompt.trim() === '') refuse(`messages.${last}.content`, 'the last user turn has no text')
  if (system.length === 0 && turns.length === 0) return prompt
  const sections: string[] = []
  if (system.length > 0) sections.push(`<system>\n${system.join('\n\n')}\n</system>`)
  if (turns.length > 0) sections.push(`<transcript>\n${turns.join('\n')}\n</transcript>`)
  sections.push(prompt)
  return sections.join('\n\n')
}
