/**
 * The one shape of a request as it crosses to an account's worker: the job carries it, the `run` message and its flat
 * wire form are built from it, and the worker's sessions read it. It is defined once, as the field table below, in
 * wire order; the type is derived from the table, the flat encoding (tuples.ts) and the main thread's zod check
 * (messages.ts) loop over it. Adding a field is one line here, plus the code that sets and reads it.
 *
 * No zod here: workers import this module (a worker's isolate would pay ~7 MB for zod, tuples.ts).
 */

/** how a field is checked where it arrives; `?` marks a field a request may leave out */
export type FieldType = 'string' | 'number' | 'boolean' | 'string?' | 'boolean?' | 'body'

/**
 * A request body as it crosses: the text, or for a large body its UTF-8 bytes in shared memory, as read. A large body
 * is never decoded on the main thread, and crosses to the check thread and the account's worker without a copy
 * (docs/performance.md, "Figures behind the code"); the thread that parses it decodes it (`bodyText`).
 */
export type RequestBody = string | Uint8Array

/** The body's text: as it is, or decoded from its bytes. */
export function bodyText(body: RequestBody): string {
  return typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8')
}

export const RUN_FIELDS = {
  /** the client's body as received, in the Anthropic shape (text, or a large body's shared bytes): the worker parses it once, on first use */
  body: 'body',
  /** resolved model (an alias or unknown name already mapped to what the account runs) */
  model: 'string',
  stream: 'boolean',
  /** the client's `max_tokens`, or the dispatcher's default */
  maxTokens: 'number',
  /** the HTTP request id, for the worker's logs */
  requestId: 'string',
  /** the client's `anthropic-beta` and `anthropic-version` headers, forwarded to Anthropic-compatible upstreams */
  anthropicBeta: 'string?',
  anthropicVersion: 'string?',
  /** the client's wire format for the answer: absent for Anthropic's, `openai-chat` or `openai-responses` (framers) */
  format: 'string?',
  /** Chat Completions' `stream_options.include_usage`: a usage chunk before [DONE] */
  includeUsage: 'boolean?',
} as const satisfies Record<string, FieldType>

type Fields = typeof RUN_FIELDS
type ValueOf<T extends FieldType> = T extends 'body' ? RequestBody : T extends 'string' | 'string?' ? string : T extends 'number' ? number : boolean
type Required_ = { readonly [K in keyof Fields as Fields[K] extends `${string}?` ? never : K]: ValueOf<Fields[K]> }
type Optional_ = { readonly [K in keyof Fields as Fields[K] extends `${string}?` ? K : never]?: ValueOf<Fields[K]> | undefined }

/** One request as an account's worker runs it. */
export type RunRequest = Required_ & Optional_

export const RUN_KEYS = Object.keys(RUN_FIELDS) as (keyof Fields)[]

/** zod's z.number(): finite numbers only */
const finite = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x)

/** Whether `value` is acceptable for a field of this type (undefined only for optional fields). */
export function fieldAccepts(type: FieldType, value: unknown): boolean {
  switch (type) {
    case 'string': return typeof value === 'string'
    case 'string?': return value === undefined || typeof value === 'string'
    case 'number': return finite(value)
    case 'boolean': return typeof value === 'boolean'
    case 'boolean?': return value === undefined || typeof value === 'boolean'
    case 'body': return typeof value === 'string' || value instanceof Uint8Array
  }
}
