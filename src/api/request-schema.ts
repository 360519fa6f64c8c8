/**
 * The Messages request as zod validates it. Every object is loose: unknown fields (`context_management`,
 * `output_config`, `cache_control`, `defer_loading`, …) pass through to the session untouched, and open enums
 * (`thinking.type: "adaptive"`, block types) take any value, because Claude Code sends new ones with every release
 * (docs/api.md, "The request"). What is checked is what we read, so a refusal always names a real mistake.
 */
import { z } from 'zod'

/** a content block as the sessions read it: an object with a string `type`; unknown fields pass through */
type Block = { type: string; [field: string]: unknown }

const isBlock = (value: unknown): value is Block =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as { type?: unknown }).type === 'string'

/**
 * Content blocks are checked by a loop, not by a zod object per block: zod copies every loose object it parses, and
 * a legal 27 MiB body of a million small text blocks took ~750 ms and ~300 MB on the checking thread that way, against
 * ~20 ms here (issue 16, test/load/hostile.load.ts). Same rules, same answers: an element that is not an object with a
 * string `type` fails the whole content as before; a text block without a string `text` is named by its path.
 */
const Blocks = z.custom<Block[]>((value) => Array.isArray(value) && value.every(isBlock)).superRefine((blocks, ctx) => {
  for (let i = 0; i < blocks.length; i++) {
    if (blocks[i].type === 'text' && typeof blocks[i].text !== 'string') {
      ctx.addIssue({ code: 'custom', path: [i, 'text'], message: 'a text block needs a string "text"' })
    }
  }
})

const Content = z.union([z.string(), Blocks], { error: 'expected a string or an array of content blocks' })

const Message = z.object({
  // `system` inside messages comes with Claude Code's per-turn-control beta: accepted, not refused
  role: z.enum(['user', 'assistant', 'system'], { error: 'expected "user", "assistant" or "system"' }),
  content: Content,
}).loose()

export const MessagesRequest = z.object({
  model: z.string({ error: 'expected a model name (string)' }).min(1, { error: 'expected a model name' }),
  max_tokens: z.number({ error: 'expected a positive integer' }).int({ error: 'expected a positive integer' })
    .positive({ error: 'expected a positive integer' }).optional(),
  messages: z.array(Message, { error: 'expected an array of messages' }).min(1, { error: 'expected at least one message' }),
  system: Content.optional(),
  stream: z.boolean({ error: 'expected true or false' }).optional(),
  metadata: z.object({
    user_id: z.string({ error: 'expected a string' }).nullable().optional(),
    routing: z.object({
      strategyHint: z.string({ error: 'expected a strategy name' }).optional(),
      sticky: z.boolean({ error: 'expected true or false' }).optional(),
    }).loose().optional(),
  }).loose().optional(),
  stop_sequences: z.array(z.string(), { error: 'expected an array of strings' }).optional(),
  temperature: z.number({ error: 'expected a number' }).min(0).max(2).optional(),
  top_p: z.number({ error: 'expected a number' }).min(0).max(1).optional(),
  top_k: z.number({ error: 'expected a number' }).int().min(0).optional(),
  tools: z.array(z.object({ name: z.string({ error: 'expected a tool name' }) }).loose(), { error: 'expected an array of tools' }).optional(),
  tool_choice: z.object({ type: z.string({ error: 'expected a tool_choice type' }) }).loose().optional(),
  thinking: z.object({ type: z.string({ error: 'expected a thinking type' }) }).loose().optional(),
}, { error: (issue) => (issue.code === 'invalid_type' ? 'expected a JSON object (the Messages request)' : undefined) }).loose()
export type MessagesRequest = z.infer<typeof MessagesRequest>

export const CountTokensRequest = MessagesRequest.omit({ max_tokens: true, stream: true })

/** `messages.1.content: expected …; model: …` — every problem with its exact path, as Claude Code needs to read it. */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues.slice(0, 5).map((i) => `${i.path.length ? i.path.join('.') : 'body'}: ${i.message}`).join('; ')
}

export interface ShapeLimits {
  maxMessages: number
  maxJsonDepth: number
}

/**
 * What no schema should be asked to walk: more messages than the limit, or JSON nested deeper than `maxJsonDepth`
 * (zod, a session's `JSON.stringify` and the CLIs behind it all recurse; a 100 000-deep array is a few hundred KB).
 * Runs on the parsed value before zod. It recurses, but never deeper than `maxJsonDepth` (capped at 1000 by the
 * schema), and allocates nothing: ~12 µs on a 48 KB Claude Code turn, against ~80 µs for its JSON.parse.
 */
export function shapeProblem(value: unknown, limits: ShapeLimits): string | undefined {
  const messages = (value as { messages?: unknown } | null)?.messages
  if (Array.isArray(messages) && messages.length > limits.maxMessages) {
    return `messages: at most ${limits.maxMessages} messages per request (got ${messages.length})`
  }
  return tooDeep(value, limits.maxJsonDepth) ? `body: JSON nested deeper than ${limits.maxJsonDepth} levels` : undefined
}

/** true when `value` has objects or arrays nested more than `left` levels deep */
function tooDeep(value: unknown, left: number): boolean {
  if (value === null || typeof value !== 'object') return false
  if (left === 0) return true
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (tooDeep(value[i], left - 1)) return true
    return false
  }
  for (const key in value) if (tooDeep((value as Record<string, unknown>)[key], left - 1)) return true
  return false
}
