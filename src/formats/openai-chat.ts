/**
 * OpenAI Chat Completions ⇄ the Anthropic Messages shape the orchestrator runs. Pure and worker-loadable (no zod):
 * the front door translates a request in (`chatToMessages`), the account's worker frames the answer out
 * (`ChatFramer`, openai-chat-stream.ts). What Chat Completions can ask that Messages cannot express is refused with a
 * FormatError naming the parameter (a 400 in OpenAI's shape), never dropped in silence (docs/api.md, "OpenAI doors").
 */

/** A request parameter that cannot be expressed: the door answers 400 naming `param`. */
export class FormatError extends Error {
  readonly param: string
  constructor(param: string, message: string) {
    super(message)
    this.name = 'FormatError'
    this.param = param
  }
}

type Json = Record<string, unknown>
const isObject = (x: unknown): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x)

/** reasoning effort → a thinking budget (tokens); `none` (or absent) asks for no thinking */
export const REASONING_BUDGET: Readonly<Record<string, number>> = { minimal: 1024, low: 2048, medium: 8192, high: 24576 }

/** Parameters with no Messages equivalent: refused when set to anything but their default. */
const UNEXPRESSIBLE: readonly [string, (v: unknown) => boolean][] = [
  ['n', (v) => v !== 1],
  ['logprobs', (v) => v !== false],
  ['top_logprobs', () => true],
  ['audio', () => true],
  ['prediction', () => true],
  ['functions', () => true],
  ['function_call', () => true],
  ['logit_bias', (v) => isObject(v) && Object.keys(v).length > 0],
  ['presence_penalty', (v) => v !== 0],
  ['frequency_penalty', (v) => v !== 0],
  ['web_search_options', () => true],
]

/** An image part's URL as an Anthropic image source: a data URL inline, anything else by URL. */
export function imageSource(url: string, param: string): Json {
  if (url.startsWith('data:')) {
    const match = /^data:([^;,]+);base64,(.*)$/s.exec(url)
    if (!match) throw new FormatError(param, 'an image data URL must be base64 ("data:image/png;base64,…")')
    return { type: 'base64', media_type: match[1], data: match[2] }
  }
  if (!/^https?:\/\//.test(url)) throw new FormatError(param, 'an image URL must be http(s) or a base64 data URL')
  return { type: 'url', url }
}

function textOfParts(content: unknown, param: string): string {
  if (typeof content === 'string') return content
  if (content === null || content === undefined) return ''
  if (!Array.isArray(content)) throw new FormatError(param, 'expected a string or an array of content parts')
  return content.map((part, j) => {
    if (isObject(part) && part.type === 'text' && typeof part.text === 'string') return part.text
    throw new FormatError(`${param}[${j}]`, 'only text parts are allowed here')
  }).join('\n')
}

function userBlocks(content: unknown, param: string): Json[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }]
  if (!Array.isArray(content)) throw new FormatError(param, 'expected a string or an array of content parts')
  return content.map((part, j): Json => {
    const where = `${param}[${j}]`
    if (!isObject(part)) throw new FormatError(where, 'expected a content part object')
    if (part.type === 'text' && typeof part.text === 'string') return { type: 'text', text: part.text }
    if (part.type === 'image_url') {
      const url = isObject(part.image_url) ? part.image_url.url : part.image_url
      if (typeof url !== 'string') throw new FormatError(`${where}.image_url`, 'expected an image URL')
      return { type: 'image', source: imageSource(url, `${where}.image_url`) }
    }
    throw new FormatError(`${where}.type`, `content parts of type "${String(part.type)}" cannot be passed on (text and image_url can)`)
  })
}

/** A tool call's `arguments` (a JSON text) as the tool_use block's input object. */
export function parseArguments(text: unknown, param: string): Json {
  if (text === undefined || text === '') return {}
  if (typeof text !== 'string') throw new FormatError(param, 'expected the arguments as a JSON string')
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new FormatError(param, 'the arguments are not valid JSON')
  }
  if (!isObject(value)) throw new FormatError(param, 'the arguments must be a JSON object')
  return value
}

/** Appends blocks to the turns, merging into the last turn when it has the same role (tool results, then user text). */
function push(turns: { role: string; content: Json[] }[], role: 'user' | 'assistant', blocks: Json[]): void {
  const last = turns.at(-1)
  if (last && last.role === role) last.content.push(...blocks)
  else turns.push({ role, content: blocks })
}

export function toolsToMessages(tools: unknown, param = 'tools'): Json[] | undefined {
  if (tools === undefined) return undefined
  if (!Array.isArray(tools)) throw new FormatError(param, 'expected an array of tools')
  return tools.map((tool, i) => {
    const fn = isObject(tool) && tool.type === 'function' ? (isObject(tool.function) ? tool.function : tool) : undefined
    if (!fn) throw new FormatError(`${param}[${i}].type`, 'only tools of type "function" can be passed on')
    if (typeof fn.name !== 'string' || fn.name === '') throw new FormatError(`${param}[${i}].function.name`, 'expected a tool name')
    const out: Json = { name: fn.name, input_schema: isObject(fn.parameters) ? fn.parameters : { type: 'object', properties: {} } }
    if (typeof fn.description === 'string') out.description = fn.description
    return out
  })
}

/** `auto` / `none` / `required` / a named function → Anthropic's tool_choice; parallel_tool_calls: false kept. */
export function toolChoiceToMessages(choice: unknown, parallel: unknown, param = 'tool_choice'): Json | undefined {
  let out: Json | undefined
  if (choice === undefined) out = undefined
  else if (choice === 'auto') out = { type: 'auto' }
  else if (choice === 'none') out = { type: 'none' }
  else if (choice === 'required') out = { type: 'any' }
  else if (isObject(choice) && choice.type === 'function') {
    const name = isObject(choice.function) ? choice.function.name : choice.name
    if (typeof name !== 'string') throw new FormatError(`${param}.function.name`, 'expected the name of a tool')
    out = { type: 'tool', name }
  } else throw new FormatError(param, 'expected "auto", "none", "required" or {"type": "function", …}')
  if (parallel === false) out = { ...(out ?? { type: 'auto' }), disable_parallel_tool_use: true }
  return out
}

/**
 * Thinking for a reasoning effort, where Messages allows it: the budget is within max_tokens, so that grows to leave
 * the answer room (docs/api.md). Left off when an earlier assistant turn called a tool without a thinking block (a
 * client that cannot send thinking back: Messages refuses thinking on such a conversation), and when a tool is forced.
 */
export function thinkingFor(effort: unknown, maxTokens: number | undefined, param: string,
  turns: readonly { role: string; content: Json[] }[] = [], forced = false): { thinking?: Json; maxTokens?: number } {
  if (effort === undefined || effort === null || effort === 'none') return { maxTokens }
  const budget = typeof effort === 'string' ? REASONING_BUDGET[effort] : undefined
  if (budget === undefined) throw new FormatError(param, `expected one of none, ${Object.keys(REASONING_BUDGET).join(', ')}`)
  const unthought = turns.some((t) => t.role === 'assistant' && t.content.some((b) => b.type === 'tool_use') && !t.content.some((b) => b.type === 'thinking'))
  if (unthought || forced) return { maxTokens }
  return { thinking: { type: 'enabled', budget_tokens: budget }, maxTokens: Math.max(maxTokens ?? 0, budget + 1024) }
}

/** Sampling as Messages takes it: temperature at most 1, and none of it beside thinking (which refuses both). */
export function sampling(out: Json, temperature: unknown, topP: unknown): void {
  if (out.thinking !== undefined) return
  if (typeof temperature === 'number') out.temperature = Math.min(1, temperature)
  if (typeof topP === 'number') out.top_p = topP
}

/** What both OpenAI doors build the same way: model, turns, system, max_tokens and thinking, stream, sampling. */
export function messagesRequest(body: Json, turns: { role: string; content: Json[] }[], system: readonly string[], maxTokens: number | undefined,
  effort: unknown, effortParam: string, choice: Json | undefined): Json {
  const forced = choice?.type === 'any' || choice?.type === 'tool'
  const { thinking, maxTokens: withThinking } = thinkingFor(effort, maxTokens, effortParam, turns, forced)
  const out: Json = { model: body.model, messages: turns }
  if (withThinking !== undefined) out.max_tokens = withThinking
  if (thinking) out.thinking = thinking
  if (system.length > 0) out.system = system.join('\n\n')
  if (body.stream === true) out.stream = true
  sampling(out, body.temperature, body.top_p)
  return out
}

/** A Chat Completions request as the Anthropic Messages request the orchestrator runs. */
export function chatToMessages(body: Json): Json {
  for (const [param, refused] of UNEXPRESSIBLE) {
    if (body[param] !== undefined && body[param] !== null && refused(body[param])) {
      throw new FormatError(param, "cannot be expressed for the accounts behind this endpoint")
    }
  }
  if (Array.isArray(body.modalities) && body.modalities.some((m) => m !== 'text')) throw new FormatError('modalities', 'only text output is available')
  const format = body.response_format
  if (isObject(format) && format.type !== 'text') throw new FormatError('response_format', `response_format "${String(format.type)}" cannot be expressed`)
  if (!Array.isArray(body.messages)) throw new FormatError('messages', 'expected an array of messages')

  const system: string[] = []
  const turns: { role: string; content: Json[] }[] = []
  body.messages.forEach((message: unknown, i: number) => {
    const param = `messages[${i}]`
    if (!isObject(message)) throw new FormatError(param, 'expected a message object')
    switch (message.role) {
      case 'system':
      case 'developer':
        system.push(textOfParts(message.content, `${param}.content`))
        return
      case 'user':
        push(turns, 'user', userBlocks(message.content, `${param}.content`))
        return
      case 'assistant': {
        const blocks: Json[] = []
        const text = textOfParts(message.content, `${param}.content`)
        if (text !== '') blocks.push({ type: 'text', text })
        if (message.tool_calls !== undefined && message.tool_calls !== null) {
          if (!Array.isArray(message.tool_calls)) throw new FormatError(`${param}.tool_calls`, 'expected an array of tool calls')
          message.tool_calls.forEach((call: unknown, j: number) => {
            const where = `${param}.tool_calls[${j}]`
            if (!isObject(call) || !isObject(call.function) || typeof call.id !== 'string' || typeof call.function.name !== 'string') {
              throw new FormatError(where, 'expected {id, type: "function", function: {name, arguments}}')
            }
            blocks.push({ type: 'tool_use', id: call.id, name: call.function.name, input: parseArguments(call.function.arguments, `${where}.function.arguments`) })
          })
        }
        if (blocks.length === 0) blocks.push({ type: 'text', text: '' })
        push(turns, 'assistant', blocks)
        return
      }
      case 'tool': {
        if (typeof message.tool_call_id !== 'string') throw new FormatError(`${param}.tool_call_id`, 'a tool message needs the tool_call_id it answers')
        push(turns, 'user', [{ type: 'tool_result', tool_use_id: message.tool_call_id, content: textOfParts(message.content, `${param}.content`) }])
        return
      }
      default:
        throw new FormatError(`${param}.role`, 'expected "system", "developer", "user", "assistant" or "tool"')
    }
  })

  const maxTokens = typeof body.max_completion_tokens === 'number' ? body.max_completion_tokens
    : typeof body.max_tokens === 'number' ? body.max_tokens : undefined
  const choice = toolChoiceToMessages(body.tool_choice, body.parallel_tool_calls)
  const out = messagesRequest(body, turns, system, maxTokens, body.reasoning_effort, 'reasoning_effort', choice)
  if (typeof body.stop === 'string') out.stop_sequences = [body.stop]
  else if (Array.isArray(body.stop)) out.stop_sequences = body.stop
  const tools = toolsToMessages(body.tools)
  if (tools) out.tools = tools
  if (choice) out.tool_choice = choice
  if (typeof body.user === 'string' && body.user !== '') out.metadata = { user_id: body.user }
  return out
}

// ── the answer, out ────────────────────────────────────────────────────────────────────────────────────────────────

/** Anthropic's stop reason as OpenAI's finish_reason: a tool call is always `tool_calls`, never `stop`. */
export function finishReason(stopReason: string | null | undefined): string {
  switch (stopReason) {
    case 'tool_use': return 'tool_calls'
    case 'max_tokens': return 'length'
    case 'refusal': return 'content_filter'
    default: return 'stop'
  }
}

export interface AnthropicUsage {
  input_tokens?: number
  output_tokens?: number
  cache_read_input_tokens?: number | null
  cache_creation_input_tokens?: number | null
}

/**
 * What an Anthropic stream says of its end, gathered as its events pass (both OpenAI stream writers): the usage from
 * `message_start`, then each `message_delta`'s stop reason and usage on top.
 */
export class StreamEnd {
  usage: AnthropicUsage = {}
  stopReason: string | null = null

  started(usage: AnthropicUsage | undefined): void {
    this.usage = { ...usage }
  }

  delta(event: { delta?: { stop_reason?: string | null }; usage?: AnthropicUsage }): void {
    if (event.delta?.stop_reason !== undefined) this.stopReason = event.delta.stop_reason
    if (event.usage) this.usage = { ...this.usage, ...event.usage }
  }
}

/** OpenAI's usage: prompt tokens include the cached ones (they were read, at a discount), which are also named. */
export function chatUsage(usage: AnthropicUsage | undefined): Json {
  const cached = usage?.cache_read_input_tokens ?? 0
  const prompt = (usage?.input_tokens ?? 0) + cached + (usage?.cache_creation_input_tokens ?? 0)
  const completion = usage?.output_tokens ?? 0
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: cached } }
}

interface Block { type?: string; text?: string; thinking?: string; id?: string; name?: string; input?: unknown }

/** A whole Anthropic message as a chat.completion. */
export function messageToChat(message: { id?: string; model?: string; content?: readonly Block[]; stop_reason?: string | null; usage?: AnthropicUsage },
  created = Math.floor(Date.now() / 1000)): Json {
  let text = ''
  let reasoning = ''
  const toolCalls: Json[] = []
  for (const block of message.content ?? []) {
    if (block.type === 'text') text += block.text ?? ''
    else if (block.type === 'thinking') reasoning += block.thinking ?? ''
    else if (block.type === 'tool_use') {
      toolCalls.push({ id: block.id, type: 'function', function: { name: block.name, arguments: JSON.stringify(block.input ?? {}) } })
    }
  }
  const reply: Json = { role: 'assistant', content: text === '' && toolCalls.length > 0 ? null : text, refusal: null }
  if (reasoning !== '') reply.reasoning_content = reasoning
  if (toolCalls.length > 0) reply.tool_calls = toolCalls
  return {
    id: `chatcmpl-${message.id ?? ''}`, object: 'chat.completion', created, model: message.model,
    choices: [{ index: 0, message: reply, logprobs: null, finish_reason: finishReason(message.stop_reason) }],
    usage: chatUsage(message.usage),
  }
}
