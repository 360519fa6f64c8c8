/**
 * The OpenAI Responses API ⇄ the Anthropic Messages shape, stateless: the whole `input` comes each time (`store:
 * false`, as Codex sends it), so a `previous_response_id` is refused (nothing is kept to continue from). Pure and
 * worker-loadable (no zod). Reasoning items a client echoes back are dropped: their encrypted content belongs to
 * another provider's model. Tools other than `function` (web_search, local_shell, custom…) are left out of what the
 * model is offered, never refused, so a client that always sends them (Codex) still works (docs/api.md).
 */
import { FormatError, imageSource, messagesRequest, parseArguments, toolChoiceToMessages, toolsToMessages, type AnthropicUsage } from './openai-chat.ts'

type Json = Record<string, unknown>
const isObject = (x: unknown): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x)

function partsToBlocks(content: unknown, param: string, role: string): Json[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }]
  if (!Array.isArray(content)) throw new FormatError(param, 'expected a string or an array of content parts')
  return content.map((part, j): Json => {
    const where = `${param}[${j}]`
    if (!isObject(part)) throw new FormatError(where, 'expected a content part object')
    if ((part.type === 'input_text' || part.type === 'output_text' || part.type === 'text') && typeof part.text === 'string') {
      return { type: 'text', text: part.text }
    }
    if (part.type === 'input_image' && role === 'user') {
      if (typeof part.image_url !== 'string') throw new FormatError(`${where}.image_url`, 'expected an image URL (file ids are not kept here)')
      return { type: 'image', source: imageSource(part.image_url, `${where}.image_url`) }
    }
    throw new FormatError(`${where}.type`, `content parts of type "${String(part.type)}" cannot be passed on`)
  })
}

function push(turns: { role: string; content: Json[] }[], role: 'user' | 'assistant', blocks: Json[]): void {
  const last = turns.at(-1)
  if (last && last.role === role) last.content.push(...blocks)
  else turns.push({ role, content: blocks })
}

/** A Responses request as the Anthropic Messages request the orchestrator runs. */
export function responsesToMessages(body: Json): Json {
  if (body.previous_response_id !== undefined && body.previous_response_id !== null) {
    throw new FormatError('previous_response_id', 'responses are not stored here: send the whole conversation as input (store: false)')
  }
  if (body.background === true) throw new FormatError('background', 'background responses are not available')
  const format = isObject(body.text) ? body.text.format : undefined
  if (isObject(format) && format.type !== 'text') throw new FormatError('text.format', `text.format "${String(format.type)}" cannot be expressed`)

  const system: string[] = []
  if (typeof body.instructions === 'string' && body.instructions !== '') system.push(body.instructions)
  const turns: { role: string; content: Json[] }[] = []
  const input = typeof body.input === 'string' ? [{ role: 'user', content: body.input }] : body.input
  if (!Array.isArray(input)) throw new FormatError('input', 'expected a string or an array of input items')
  input.forEach((item: unknown, i: number) => {
    const param = `input[${i}]`
    if (!isObject(item)) throw new FormatError(param, 'expected an input item object')
    const type = item.type ?? 'message'
    switch (type) {
      case 'message': {
        const role = String(item.role)
        if (role === 'system' || role === 'developer') {
          system.push(partsToBlocks(item.content, `${param}.content`, role).map((b) => String(b.text ?? '')).join('\n'))
        } else if (role === 'user' || role === 'assistant') {
          push(turns, role, partsToBlocks(item.content, `${param}.content`, role))
        } else throw new FormatError(`${param}.role`, 'expected "user", "assistant", "system" or "developer"')
        return
      }
      case 'function_call':
        if (typeof item.call_id !== 'string' || typeof item.name !== 'string') throw new FormatError(param, 'a function_call needs call_id and name')
        push(turns, 'assistant', [{ type: 'tool_use', id: item.call_id, name: item.name, input: parseArguments(item.arguments, `${param}.arguments`) }])
        return
      case 'function_call_output': {
        if (typeof item.call_id !== 'string') throw new FormatError(`${param}.call_id`, 'a function_call_output needs the call_id it answers')
        const output = typeof item.output === 'string' ? item.output
          : partsToBlocks(item.output, `${param}.output`, 'user')
        push(turns, 'user', [{ type: 'tool_result', tool_use_id: item.call_id, content: output }])
        return
      }
      case 'reasoning':
        return // another provider's reasoning, encrypted for its model: dropped (docs/api.md)
      default:
        throw new FormatError(`${param}.type`, `input items of type "${String(type)}" cannot be passed on`)
    }
  })
  // a conversation that ends on the model's own tool call with no output yet cannot be continued by a model
  const functionTools = Array.isArray(body.tools) ? body.tools.filter((t) => isObject(t) && t.type === 'function') : undefined
  const maxTokens = typeof body.max_output_tokens === 'number' ? body.max_output_tokens : undefined
  const effort = isObject(body.reasoning) ? body.reasoning.effort : undefined
  const tools = toolsToMessages(functionTools)
  const choice = tools && tools.length > 0 ? toolChoiceToMessages(isObject(body.tool_choice) && body.tool_choice.type === 'function'
    ? { type: 'function', function: { name: body.tool_choice.name } } : body.tool_choice, body.parallel_tool_calls) : undefined
  const out = messagesRequest(body, turns, system, maxTokens, effort, 'reasoning.effort', choice)
  if (tools && tools.length > 0) {
    out.tools = tools
    if (choice) out.tool_choice = choice
  }
  if (typeof body.user === 'string' && body.user !== '') out.metadata = { user_id: body.user }
  return out
}

/** OpenAI's usage for a response: input tokens include the cached ones, which are also named. */
export function responseUsage(usage: AnthropicUsage | undefined): Json {
  const cached = usage?.cache_read_input_tokens ?? 0
  const input = (usage?.input_tokens ?? 0) + cached + (usage?.cache_creation_input_tokens ?? 0)
  const output = usage?.output_tokens ?? 0
  return {
    input_tokens: input, input_tokens_details: { cached_tokens: cached },
    output_tokens: output, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: input + output,
  }
}

export const functionCallItem = (id: string, name: string, args: string, status: string): Json =>
  ({ type: 'function_call', id: `fc_${id}`, call_id: id, name, arguments: args, status })

/** the output message item's id: the answer's own `msg_…` id */
export const messageItemId = (id: string): string => (id.startsWith('msg_') ? id : `msg_${id}`)

export const messageItem = (id: string, text: string, status: string): Json =>
  ({ type: 'message', id: messageItemId(id), status, role: 'assistant', content: text === '' && status === 'in_progress' ? [] : [{ type: 'output_text', text, annotations: [] }] })

/** The response object (whole, or the shell a stream's first and last events carry). */
export function responseObject(id: string, model: string, status: string, output: Json[], usage: AnthropicUsage | undefined,
  stopReason: string | null, createdAt: number): Json {
  return {
    id: `resp_${id}`, object: 'response', created_at: createdAt, status, model, output,
    incomplete_details: stopReason === 'max_tokens' ? { reason: 'max_output_tokens' } : null,
    error: null, parallel_tool_calls: true, tool_choice: 'auto', tools: [], store: false,
    usage: status === 'in_progress' ? null : responseUsage(usage),
  }
}

interface Block { type?: string; text?: string; id?: string; name?: string; input?: unknown }

/** A whole Anthropic message as a Responses `response`. */
export function messageToResponse(message: { id?: string; model?: string; content?: readonly Block[]; stop_reason?: string | null; usage?: AnthropicUsage }): Json {
  const id = message.id ?? ''
  const output: Json[] = []
  let text = ''
  for (const block of message.content ?? []) if (block.type === 'text') text += block.text ?? ''
  if (text !== '') output.push(messageItem(id, text, 'completed'))
  for (const block of message.content ?? []) {
    if (block.type === 'tool_use') output.push(functionCallItem(block.id ?? '', block.name ?? '', JSON.stringify(block.input ?? {}), 'completed'))
  }
  const status = message.stop_reason === 'max_tokens' ? 'incomplete' : 'completed'
  return responseObject(id, message.model ?? '', status, output, message.usage, message.stop_reason ?? null, Math.floor(Date.now() / 1000))
}
