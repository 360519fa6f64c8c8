/**
 * A request body from text to a checked request: JSON.parse, the shape limits, the zod schema. One function, run on
 * the main thread for ordinary bodies and on a helper thread for large ones (check-pool.ts), so both paths give the
 * same answers. Off the main thread only a summary comes back, what admission reads: the main thread never parses a
 * large body at all (the account's worker parses the text it is handed, as for any request).
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { Code } from '../errors.ts'
import type { AdmittedRequest } from '../dispatch/admission.ts'
import { affinityKey, type AffinityKey } from '../dispatch/affinity.ts'
import { toolResultIds } from '../dispatch/tool-calls.ts'
import { estimateInputTokens } from '../protocol/anthropic.ts'
import { bodyText, type RequestBody } from '../protocol/run-request.ts'
import { FormatError, chatToMessages } from '../formats/openai-chat.ts'
import { responsesToMessages } from '../formats/openai-responses.ts'
import { CountTokensRequest, MessagesRequest, describeIssues, shapeProblem, type ShapeLimits } from './request-schema.ts'

/** what the body is: an Anthropic Messages request, a count_tokens one, or one of OpenAI's, translated to Messages */
export type CheckKind = 'messages' | 'count_tokens' | 'openai-chat' | 'openai-responses'

export type Checked =
  | {
    readonly ok: true; readonly kind: 'messages'; readonly request: AdmittedRequest
    /** a summary's: the affinity key and the tool_use ids the last user turn answers (admission.ts) */
    readonly affinity?: AffinityKey | undefined; readonly continues?: readonly string[] | undefined
    /** an OpenAI request's translation, as the text the worker parses */
    readonly body?: string | undefined
    /** Chat Completions' stream_options.include_usage */
    readonly includeUsage?: boolean | undefined
  }
  | { readonly ok: true; readonly kind: 'count_tokens'; readonly inputTokens: number }
  | { readonly ok: false; readonly code: Code; readonly message: string; readonly param?: string | undefined }

export interface CheckTask {
  readonly kind: CheckKind
  /** the body: text, or a large body's shared bytes (decoded here, on the thread that checks it) */
  readonly body: RequestBody
  readonly limits: ShapeLimits
  /** the headers affinity reads (the session headers), for a summary's affinity key */
  readonly headers: IncomingHttpHeaders
  /** answer with what admission reads and the affinity key, not the whole request (a large body, off the main thread) */
  readonly summarize: boolean
}

export function checkRequest(task: CheckTask): Checked {
  let value: unknown
  try {
    value = JSON.parse(bodyText(task.body))
  } catch (err) {
    return { ok: false, code: 'AGYC_MALFORMED_JSON', message: `request body is not valid JSON: ${(err as Error).message}` }
  }
  const problem = shapeProblem(value, task.limits)
  if (problem) return { ok: false, code: 'AGYC_INVALID_REQUEST', message: problem }
  let body: string | undefined
  let includeUsage: boolean | undefined
  if (task.kind === 'openai-chat' || task.kind === 'openai-responses') {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, code: 'AGYC_INVALID_REQUEST', message: 'expected a JSON object' }
    const openai = value as Record<string, unknown>
    if (typeof openai.model !== 'string' || openai.model === '') return { ok: false, code: 'AGYC_INVALID_REQUEST', message: 'model: expected a model name', param: 'model' }
    try {
      value = task.kind === 'openai-chat' ? chatToMessages(openai) : responsesToMessages(openai)
    } catch (err) {
      if (err instanceof FormatError) return { ok: false, code: 'AGYC_INVALID_REQUEST', message: `${err.param}: ${err.message}`, param: err.param }
      throw err
    }
    body = JSON.stringify(value)
    const options = openai.stream_options as { include_usage?: unknown } | undefined
    includeUsage = options?.include_usage === true
  }
  if (task.kind === 'count_tokens') {
    const parsed = CountTokensRequest.safeParse(value)
    if (!parsed.success) return { ok: false, code: 'AGYC_INVALID_REQUEST', message: describeIssues(parsed.error.issues) }
    return { ok: true, kind: 'count_tokens', inputTokens: estimateInputTokens(parsed.data) }
  }
  const parsed = MessagesRequest.safeParse(value)
  if (!parsed.success) return { ok: false, code: 'AGYC_INVALID_REQUEST', message: describeIssues(parsed.error.issues) }
  const request = parsed.data
  if (!task.summarize) return { ok: true, kind: 'messages', request, body, includeUsage }
  const routing = request.metadata?.routing
  return {
    ok: true,
    kind: 'messages',
    request: {
      model: request.model, stream: request.stream, max_tokens: request.max_tokens,
      metadata: routing ? { routing: { strategyHint: routing.strategyHint, sticky: routing.sticky } } : undefined,
    },
    affinity: affinityKey(task.headers, request),
    continues: toolResultIds(request),
    body, includeUsage,
  }
}
