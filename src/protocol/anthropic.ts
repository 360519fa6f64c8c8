/**
 * Small readers of the Anthropic Messages request shape, shared by the API (count_tokens) and the sessions. They
 * accept whatever passed validation: unknown block types are skipped, never refused.
 */

interface Block { type?: unknown; text?: unknown }
interface Message { role?: unknown; content?: unknown }
export interface MessagesRequest {
  model?: string
  messages?: Message[]
  system?: string | Block[]
  tools?: unknown[]
  [key: string]: unknown
}

export function textOf(content: unknown): string {
  if (typeof content === 'string') return content
  if (!Array.isArray(content)) return ''
  let text = ''
  for (const block of content as Block[]) {
    if (block && block.type === 'text' && typeof block.text === 'string') text += text ? `\n${block.text}` : block.text
  }
  return text
}

/** The text of the last `user` turn: what a single-prompt CLI is asked. */
export function lastUserText(request: MessagesRequest): string {
  const messages = request.messages ?? []
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]?.role === 'user') return textOf(messages[i]?.content)
  }
  return ''
}

/**
 * A local estimate of input tokens: about 4 characters of text per token (the ratio Anthropic documents for English),
 * counted over system, messages and tool definitions. Never exact, never spends an account's quota.
 */
export function estimateInputTokens(request: MessagesRequest): number {
  let chars = 0
  chars += typeof request.system === 'string' ? request.system.length : textOf(request.system).length
  for (const message of request.messages ?? []) chars += textOf(message.content).length + 8
  if (request.tools) chars += JSON.stringify(request.tools).length
  return Math.max(1, Math.ceil(chars / 4))
}

export const estimateTokens = (text: string): number => Math.max(1, Math.ceil(text.length / 4))
