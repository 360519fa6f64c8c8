/**
 * A rendered prompt (agent/transcript.ts: text, and the request's base64 images in the order they were marked) in each
 * CLI's own input shape. Agent mode and the tool bridge send a user turn the same way, so both build it here.
 */
import type { Prompt } from '../bridge/types.ts'

/** Claude Code's stream-json user message content: the text alone, or a text block then the images (the Messages API's blocks). */
export function claudeContent(prompt: Prompt): string | object[] {
  const images = prompt.images ?? []
  if (images.length === 0) return prompt.text
  return [{ type: 'text', text: prompt.text }, ...images.map((i) => ({ type: 'image', source: { type: 'base64', media_type: i.media_type, data: i.data } }))]
}

/** Codex app-server `turn/start` input: the text, then each image as a data URL (Codex sends it on as an `input_image`). */
export function codexInput(prompt: Prompt): object[] {
  const input: object[] = [{ type: 'text', text: prompt.text, text_elements: [] }]
  for (const image of prompt.images ?? []) input.push({ type: 'image', url: `data:${image.media_type};base64,${image.data}` })
  return input
}

/** ACP `session/prompt` content: a text block, then image blocks (only for an agent whose `promptCapabilities.image` is set). */
export function acpPrompt(prompt: Prompt): object[] {
  const content: object[] = [{ type: 'text', text: prompt.text }]
  for (const image of prompt.images ?? []) content.push({ type: 'image', mimeType: image.media_type, data: image.data })
  return content
}
