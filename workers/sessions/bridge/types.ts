/**
 * The client's tools through an agent CLI (issue 14): what a tool bridge takes and gives, whatever the CLI. The
 * request's tools come in the Anthropic shape; a call the model makes goes out as a `tool_use` block under the
 * client's own name with an id we mint; the client's `tool_result` comes back through `resolve`. The CLI behind it
 * stays alive, parked on the call, until then.
 */
import { randomBytes } from 'node:crypto'

/** A tool as the client declared it (Anthropic Messages `tools[]`, custom tools only). */
export interface ClientTool {
  readonly name: string
  readonly description?: string
  readonly input_schema: Readonly<Record<string, unknown>>
}

/** One call the model made, as the client will see it in a `tool_use` block. */
export interface ToolCall {
  /** `toolu_…`, minted here; the CLI's own call id stays inside the bridge */
  readonly id: string
  /** the client's tool name, whatever the CLI called it */
  readonly name: string
  readonly input: unknown
}

export type ResultBlock =
  | { readonly type: 'text'; readonly text: string }
  | { readonly type: 'image'; readonly source: { readonly type: 'base64'; readonly media_type: string; readonly data: string } }

/** The client's `tool_result` content, as the Messages API allows it: a string or text and image blocks. */
export interface ToolResult {
  readonly content: string | readonly ResultBlock[]
  readonly is_error?: boolean
}

export interface StepUsage {
  readonly input_tokens: number
  readonly output_tokens: number
  readonly cache_read_input_tokens?: number
}

/**
 * Where a run of the CLI stopped: on tool calls (the CLI is parked until each is resolved), or at the end of its turn.
 * Text deltas before it went to the `onText` given for the step.
 */
export type Step =
  | { readonly kind: 'tool_use'; readonly calls: readonly ToolCall[]; readonly usage?: StepUsage; readonly model?: string }
  | { readonly kind: 'end'; readonly stopReason: 'end_turn' | 'max_tokens' | 'refusal'; readonly usage?: StepUsage; readonly model?: string }

export type TextSink = (delta: string) => void

/**
 * Any sign of life from the CLI about this conversation while a step runs: text, but also thinking, a tool call's
 * input streaming in, a status or progress event. The session's silence timer restarts on it (a model writing a
 * long file through the client's Write tool streams no text for minutes).
 */
export type AliveSink = () => void

export interface ImageData {
  readonly media_type: string
  /** base64 */
  readonly data: string
}

/** What the CLI is asked: the conversation rendered as text, and the images of its last user turn. */
export interface Prompt {
  readonly text: string
  readonly images?: readonly ImageData[]
}

/** What the bridges of every CLI offer the session that drives them. */
export interface ToolBridge {
  /**
   * Sends a user turn and runs until the model calls tools or ends its turn. After an `end` step the same CLI
   * conversation can take the next user turn (only the new turn, the CLI keeps the history).
   */
  start(prompt: Prompt, onText: TextSink, onAlive?: AliveSink): Promise<Step>
  /**
   * Hands one result back. False when the id is not pending here (unknown, already answered, or expired): the
   * caller then serves the conversation fresh instead.
   */
  resolve(id: string, result: ToolResult): boolean
  /** after every call of the last step was resolved: runs until the next tool calls or the end of the turn */
  next(onText: TextSink, onAlive?: AliveSink): Promise<Step>
  /** the ids still waiting for the client */
  readonly pending: readonly string[]
  /** answers what is pending with an error, stops the CLI's turn and releases it; idempotent */
  close(reason?: string): Promise<void>
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

/** `toolu_01` and 22 random letters and digits: the shape of the Anthropic API's own ids, which clients may check. */
export function mintToolUseId(): string {
  let id = 'toolu_01'
  for (const byte of randomBytes(22)) id += BASE62[byte % 62]
  return id
}

/** A result's text: the string, or its text blocks joined (images are passed apart where the CLI takes them). */
export function resultText(result: ToolResult): string {
  if (typeof result.content === 'string') return result.content
  return result.content.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join('\n')
}

export function resultImages(result: ToolResult): ImageData[] {
  if (typeof result.content === 'string') return []
  return result.content.flatMap((b) => (b.type === 'image' ? [{ media_type: b.source.media_type, data: b.source.data }] : []))
}
