/**
 * Every error the orchestrator can answer with, in one table (fastify's `lib/errors.js` habit): a stable code, the
 * HTTP status and the Anthropic error type. `src/api/answer.ts` is the only place a code becomes a response; the client
 * sees `{type, message}`, the code goes to the log line. The error table in docs/api.md lists every code (a test checks).
 */
import { scrub } from './config/known-secrets.ts'

export type AnthropicErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'request_too_large'
  | 'rate_limit_error'
  | 'api_error'
  | 'timeout_error'
  | 'overloaded_error'

interface CodeSpec {
  readonly status: number
  readonly type: AnthropicErrorType
  /** `retry-after` in whole seconds, for errors the client should simply retry */
  readonly retryAfterS?: number
  /** a failure we caused (our queue, our deadline, the client): never counts against an account */
  readonly localOrigin?: boolean
}

export const codes = {
  AGYC_INVALID_REQUEST: { status: 400, type: 'invalid_request_error', localOrigin: true },
  AGYC_MALFORMED_JSON: { status: 400, type: 'invalid_request_error', localOrigin: true },
  AGYC_UNAUTHORIZED: { status: 401, type: 'authentication_error', localOrigin: true },
  AGYC_FORBIDDEN: { status: 403, type: 'permission_error', localOrigin: true },
  AGYC_NOT_FOUND: { status: 404, type: 'not_found_error', localOrigin: true },
  AGYC_MODEL_NOT_FOUND: { status: 404, type: 'not_found_error', localOrigin: true },
  AGYC_METHOD_NOT_ALLOWED: { status: 405, type: 'invalid_request_error', localOrigin: true },
  AGYC_REQUEST_TOO_LARGE: { status: 413, type: 'request_too_large', localOrigin: true },
  AGYC_HEADERS_TOO_LARGE: { status: 431, type: 'request_too_large', localOrigin: true },
  AGYC_RECEIVE_TIMEOUT: { status: 408, type: 'timeout_error', localOrigin: true },
  AGYC_EXPECTATION_FAILED: { status: 417, type: 'invalid_request_error', localOrigin: true },
  /** POST /admin/reload with a config file that does not validate: the running configuration stays */
  AGYC_CONFIG_INVALID: { status: 400, type: 'invalid_request_error', localOrigin: true },
  AGYC_QUOTA_EXHAUSTED: { status: 429, type: 'rate_limit_error', localOrigin: true },
  /** the bytes of bodies being read and parsed at once are at `server.bodyBudgetBytes` */
  AGYC_BODY_BUDGET: { status: 529, type: 'overloaded_error', retryAfterS: 1, localOrigin: true },
  AGYC_QUEUE_FULL: { status: 529, type: 'overloaded_error', retryAfterS: 1, localOrigin: true },
  AGYC_QUEUE_TIMEOUT: { status: 529, type: 'overloaded_error', retryAfterS: 1, localOrigin: true },
  AGYC_NO_ACCOUNT: { status: 529, type: 'overloaded_error', retryAfterS: 5, localOrigin: true },
  AGYC_SHUTTING_DOWN: { status: 503, type: 'overloaded_error', retryAfterS: 1, localOrigin: true },
  /** GET /readyz while no account can take work */
  AGYC_NOT_READY: { status: 503, type: 'overloaded_error', retryAfterS: 1, localOrigin: true },
  AGYC_CANCELLED: { status: 499, type: 'api_error', localOrigin: true },
  /** the client stopped reading its stream for `server.writeStallTimeoutMs`: cut, and its request cancelled */
  AGYC_WRITE_STALLED: { status: 499, type: 'api_error', localOrigin: true },
  AGYC_REQUEST_TIMEOUT: { status: 504, type: 'timeout_error', localOrigin: true },
  AGYC_UPSTREAM_FAILED: { status: 502, type: 'api_error' },
  AGYC_UPSTREAM_RATE_LIMITED: { status: 429, type: 'rate_limit_error' },
  AGYC_UPSTREAM_OVERLOADED: { status: 529, type: 'overloaded_error' },
  AGYC_UPSTREAM_REJECTED: { status: 400, type: 'invalid_request_error' },
  AGYC_UPSTREAM_AUTH: { status: 401, type: 'authentication_error' },
  AGYC_UPSTREAM_FORBIDDEN: { status: 403, type: 'permission_error' },
  AGYC_UPSTREAM_NOT_FOUND: { status: 404, type: 'not_found_error' },
  AGYC_UPSTREAM_TOO_LARGE: { status: 413, type: 'request_too_large' },
  AGYC_UPSTREAM_TIMEOUT: { status: 504, type: 'timeout_error' },
  AGYC_WORKER_DIED: { status: 502, type: 'api_error' },
  /** a fleet: the node a request was forwarded to failed or went away before its answer was complete */
  AGYC_PEER_FAILED: { status: 502, type: 'api_error', localOrigin: true },
  AGYC_INTERNAL: { status: 500, type: 'api_error' },
} as const satisfies Record<string, CodeSpec>

export type Code = keyof typeof codes
export const codeNames = Object.keys(codes) as Code[]

export function isCode(value: unknown): value is Code {
  return typeof value === 'string' && Object.hasOwn(codes, value)
}

export class OrchestratorError extends Error {
  readonly code: Code
  /** seconds; overrides the table's default (an upstream's own retry-after, the soonest recovery) */
  readonly retryAfterS: number | undefined
  /** the request parameter at fault, where a wire shape names it (OpenAI's `param`) */
  readonly param: string | undefined
  constructor(code: Code, message: string, options?: ErrorOptions & { retryAfterS?: number; param?: string }) {
    super(message, options)
    this.name = 'OrchestratorError'
    this.code = code
    this.retryAfterS = options?.retryAfterS
    this.param = options?.param
  }
}

export function specOf(code: Code): CodeSpec {
  return codes[code]
}

/** The Anthropic error body, serialized once; a known secret quoted in the message (an upstream's words) is scrubbed. */
export function errorBody(code: Code, message: string): string {
  return JSON.stringify({ type: 'error', error: { type: codes[code].type, message: scrub(message) } })
}

/** Integer seconds, at least 1 and at most 60: Claude Code stops retrying above 60. */
export function retryAfterOf(error: OrchestratorError): number | undefined {
  const s = error.retryAfterS ?? specOf(error.code).retryAfterS
  return s === undefined ? undefined : Math.min(60, Math.max(1, Math.ceil(s)))
}

export function toOrchestratorError(err: unknown): OrchestratorError {
  if (err instanceof OrchestratorError) return err
  return new OrchestratorError('AGYC_INTERNAL', 'internal error', { cause: err })
}
