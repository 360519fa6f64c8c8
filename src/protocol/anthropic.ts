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

/**
 * The first and last `n` characters of `textOf(content)`, without building the text: a million small blocks joined
 * into one string cost ~150 ms and ~100 MB of intermediate strings (issue 16).
 */
export function textEnds(content: unknown, n: number): { head: string; tail: string } {
  if (typeof content === 'string') return { head: content.slice(0, n), tail: content.slice(-n) }
  if (!Array.isArray(content)) return { head: '', tail: '' }
  const blocks = content as Block[]
  const textAt = (i: number): string | undefined => {
    const block = blocks[i]
    return block && block.type === 'text' && typeof block.text === 'string' ? block.text : undefined
  }
  let head = ''
  let first = -1 // the first block with text: every later text block follows a newline (textOf's rule)
  for (let i = 0; i < blocks.length && head.length < n; i++) {
    const text = textAt(i)
    if (text === undefined) continue
    head += head ? `\n${text}` : text
    if (first < 0 && text !== '') first = i
  }
  let tail = ''
  for (let i = blocks.length - 1; first >= 0 && i >= first && tail.length < n; i--) {
    const text = textAt(i)
    if (text !== undefined) tail = (i > first ? `\n${text}` : text) + tail
  }
  return { head: head.slice(0, n), tail: tail.slice(-n) }
}

/** `textOf(content).length`, without building the text (same reason) */
export function textLength(content: unknown): number {
  if (typeof content === 'string') return content.length
  if (!Array.isArray(content)) return 0
  let length = 0
  for (const block of content as Block[]) {
    if (block && block.type === 'text' && typeof block.text === 'string') length += length > 0 ? block.text.length + 1 : block.text.length
  }
  return length
}

/**
 * Where the last `user` turn holds a block a text-only prompt would drop (an image, a document), as a path for the
 * client's 400 (`messages.3.content.1`); undefined when its text is all it says.
 */
export function droppedByPrompt(request: MessagesRequest): { path: string; type: string } | undefined {
  const messages = request.messages ?? []
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]?.role !== 'user') continue
    const content = messages[i]?.content
    if (!Array.isArray(content)) return undefined
    for (let j = 0; j < content.length; j++) {
      const type = (content[j] as Block | undefined)?.type
      if (type === 'image' || type === 'document') return { path: `messages.${i}.content.${j}`, type }
    }
    return undefined
  }
  return undefined
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
  chars += textLength(request.system)
  for (const message of request.messages ?? []) chars += textLength(message.content) + 8
  if (request.tools) chars += JSON.stringify(request.tools).length
  return Math.max(1, Math.ceil(chars / 4))
}

export const estimateTokens = (text: string): number => Math.max(1, Math.ceil(text.length / 4))
