/**
 * The client's side of a tool loop, as the bridge tests play it with the official SDK's types: the tool they offer,
 * and the next request of the loop (the conversation so far, the assistant's answer, a tool_result for each tool_use).
 */
import type Anthropic from '@anthropic-ai/sdk'

export const WEATHER: Anthropic.Tool = {
  name: 'get_weather',
  description: 'The current weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
}

export const toolUses = (message: Anthropic.Message): Anthropic.ToolUseBlock[] =>
  message.content.filter((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use')

export function answerToolUses(request: Anthropic.MessageCreateParamsNonStreaming, message: Anthropic.Message,
  result: (use: Anthropic.ToolUseBlock) => string): Anthropic.MessageCreateParamsNonStreaming {
  return {
    ...request,
    messages: [
      ...request.messages,
      { role: 'assistant', content: message.content as Anthropic.ContentBlockParam[] },
      { role: 'user', content: toolUses(message).map((use) => ({ type: 'tool_result' as const, tool_use_id: use.id, content: result(use) })) },
    ],
  }
}
