/**
 * A Messages request as one prompt for an agent CLI (docs/agent-clis.md, "What is translated"). A single user turn
 * with no system text is passed as it is. Otherwise the system text and the earlier turns are rendered as a tagged
 * transcript ahead of the last user turn:
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
 *     <tool_use id="toolu_…" name="get_weather">
 *     {"city":"Paris"}
 *     </tool_use>
 *     </assistant>
 *     <user>
 *     <tool_result id="toolu_…">
 *     22°C
 *     </tool_result>
 *     </user>
 *     </transcript>
 *
 *     …the last user turn…
 *
 * Text blocks are joined by newlines; thinking blocks of earlier assistant turns are left out (they are the model's
 * scratch work, not the conversation). Tool calls and their results are history the CLI has no live session for
 * (another account's, an expired one's, a restart's): they become tagged text (`error` marks an `is_error` result).
 * Base64 images go to CLIs that take them (`images: true`: all three presets, in agent mode and through the tool
 * bridge), each marked where it was (`<image n="1"/>`), and are refused otherwise; an image by URL or file id is
 * refused everywhere (nothing here fetches it). Any other block (document, server tool blocks…) cannot be given to a
 * CLI: the request is refused with a 400 naming the block, never passed on with a piece missing.
 */
import { OrchestratorError } from '../../../src/errors.ts'
import type { MessagesRequest } from '../../../src/protocol/anthropic.ts'
import type { ImageData, Prompt } from '../bridge/types.ts'

interface Block { type?: unknown; text?: unknown; id?: unknown; name?: unknown; input?: unknown; tool_use_id?: unknown; content?: unknown; is_error?: unknown; source?: unknown }

export interface RenderOptions {
  /** base64 images go with the prompt, marked in the text where they were; without it they are refused */
  readonly images?: boolean
  /** why images are refused when `images` is off (a CLI that said so at its handshake); default: it takes text only */
  readonly noImages?: string
  /** the CLI takes the system text apart (the caller passes `system` on): the prompt leaves it out */
  readonly systemApart?: boolean
}

export interface Rendered {
  readonly prompt: Prompt
  /** the system text, joined; undefined when the request has none */
  readonly system: string | undefined
}

const SKIPPED = new Set(['thinking', 'redacted_thinking'])

function refuse(path: string, why: string): never {
  throw new OrchestratorError('AGYC_INVALID_REQUEST', `${path}: ${why}`)
}

/** an attribute value: ids and tool names are plain, but a client may send anything */
const attr = (value: unknown): string => String(value).replace(/["<>&\n]/g, (c) => `&#${c.charCodeAt(0)};`)

class Renderer {
  readonly images: ImageData[] = []
  readonly #what: string
  readonly #options: RenderOptions

  constructor(what: string, options: RenderOptions) {
    this.#what = what
    this.#options = options
  }

  /** a message's or the system's content as text; `role` decides what may be skipped */
  text(content: unknown, path: string, role: unknown): string {
    if (typeof content === 'string') return content
    const parts: string[] = []
    ;(content as Block[]).forEach((block, j) => {
      const type = block?.type
      if (type === 'text') parts.push(String(block.text))
      else if (role === 'assistant' && SKIPPED.has(String(type))) return
      else if (type === 'image' && role !== 'system') parts.push(this.#image(block, `${path}.${j}`))
      else if (type === 'tool_use' && role === 'assistant') {
        parts.push(`<tool_use id="${attr(block.id)}" name="${attr(block.name)}">\n${JSON.stringify(block.input ?? {})}\n</tool_use>`)
      } else if (type === 'tool_result' && role === 'user') {
        const body = block.content === undefined ? '' : this.text(block.content, `${path}.${j}.content`, 'tool_result')
        parts.push(`<tool_result id="${attr(block.tool_use_id)}"${block.is_error === true ? ' error' : ''}>\n${body}\n</tool_result>`)
      } else refuse(`${path}.${j}`, `a "${String(type)}" block cannot be given to ${this.#what}, which takes ${this.#options.images ? 'text, images and tool blocks' : 'text only'}`)
    })
    return parts.join('\n')
  }

  #image(block: Block, path: string): string {
    if (!this.#options.images) refuse(path, this.#options.noImages ?? `a "image" block cannot be given to ${this.#what}, which takes text only`)
    const source = block.source as { type?: unknown; media_type?: unknown; data?: unknown } | undefined
    if (source?.type !== 'base64' || typeof source.media_type !== 'string' || typeof source.data !== 'string') {
      refuse(path, `${this.#what} takes images as base64 data only (an image by URL or file id is not fetched)`)
    }
    this.images.push({ media_type: source.media_type, data: source.data })
    return `<image n="${this.images.length}"/>`
  }
}

/** The conversation for a fresh CLI conversation: the prompt (text and images) and the system text. */
export function renderConversation(request: MessagesRequest, what: string, options: RenderOptions = {}): Rendered {
  const render = new Renderer(what, options)
  const system: string[] = []
  if (request.system !== undefined) {
    const text = render.text(request.system, 'system', 'system')
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
    const role = message.role === 'system' ? 'system' : message.role
    const text = render.text(message.content, `messages.${i}.content`, role)
    if (message.role === 'system') {
      if (text) system.push(text)
    } else if (i === last) {
      prompt = text
    } else {
      turns.push(`<${String(message.role)}>\n${text}\n</${String(message.role)}>`)
    }
  })
  if (prompt.trim() === '') refuse(`messages.${last}.content`, 'the last user turn has no text')
  const systemText = system.length > 0 ? system.join('\n\n') : undefined
  const sections: string[] = []
  if (systemText !== undefined && !options.systemApart) sections.push(`<system>\n${systemText}\n</system>`)
  if (turns.length > 0) sections.push(`<transcript>\n${turns.join('\n')}\n</transcript>`)
  const text = sections.length === 0 ? prompt : [...sections, prompt].join('\n\n')
  return { prompt: render.images.length > 0 ? { text, images: render.images } : { text }, system: systemText }
}

/**
 * The agent's own tools run (agent mode): the same prompt as for a bridged conversation (its images with it when the
 * CLI takes them), the system text inside it, and no way to make the agent call a tool of the request's.
 */
export function renderPrompt(request: MessagesRequest, what: string, options: Pick<RenderOptions, 'images' | 'noImages'> = {}): Prompt {
  const choice = (request.tool_choice as { type?: unknown } | undefined)?.type
  if (choice === 'any' || choice === 'tool') refuse('tool_choice', `${what} cannot be made to call one of the request's tools`)
  return renderConversation(request, what, { images: options.images, noImages: options.noImages }).prompt
}
