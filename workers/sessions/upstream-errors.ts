/**
 * An upstream's failure in our codes, keeping what the client can act on: 429 with its retry-after, 529, and the
 * meaningful 4xx statuses. Children report errors by Anthropic error type; HTTP upstreams by status.
 */
import { OrchestratorError, type Code } from '../../src/errors.ts'

const byType: Record<string, Code> = {
  invalid_request_error: 'AGYC_UPSTREAM_REJECTED',
  authentication_error: 'AGYC_UPSTREAM_AUTH',
  permission_error: 'AGYC_UPSTREAM_FORBIDDEN',
  not_found_error: 'AGYC_UPSTREAM_NOT_FOUND',
  request_too_large: 'AGYC_UPSTREAM_TOO_LARGE',
  rate_limit_error: 'AGYC_UPSTREAM_RATE_LIMITED',
  overloaded_error: 'AGYC_UPSTREAM_OVERLOADED',
  timeout_error: 'AGYC_UPSTREAM_TIMEOUT',
  api_error: 'AGYC_UPSTREAM_FAILED',
}

export function codeForStatus(status: number): Code {
  if (status === 429) return 'AGYC_UPSTREAM_RATE_LIMITED'
  if (status === 529 || status === 503) return 'AGYC_UPSTREAM_OVERLOADED'
  if (status === 401) return 'AGYC_UPSTREAM_AUTH'
  if (status === 403) return 'AGYC_UPSTREAM_FORBIDDEN'
  if (status === 404) return 'AGYC_UPSTREAM_NOT_FOUND'
  if (status === 413) return 'AGYC_UPSTREAM_TOO_LARGE'
  if (status === 408 || status === 504) return 'AGYC_UPSTREAM_TIMEOUT'
  if (status >= 400 && status < 500) return 'AGYC_UPSTREAM_REJECTED'
  return 'AGYC_UPSTREAM_FAILED'
}

/** `retry-after` as seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value
  if (!text) return undefined
  const seconds = Number(text)
  if (Number.isFinite(seconds) && seconds >= 0) return seconds
  const at = Date.parse(text)
  return Number.isNaN(at) ? undefined : Math.max(0, (at - Date.now()) / 1000)
}

/** An Anthropic error object (`{type, message}`) a child or upstream sent, as our error. */
export function fromAnthropicError(error: unknown, where: string, retryAfterS?: number): OrchestratorError {
  const e = (error && typeof error === 'object' ? error : {}) as { type?: unknown; message?: unknown }
  const code = (typeof e.type === 'string' && byType[e.type]) || 'AGYC_UPSTREAM_FAILED'
  const message = typeof e.message === 'string' && e.message ? e.message : `${where} reported ${String(e.type ?? 'an error')}`
  return new OrchestratorError(code, `${where}: ${message}`, retryAfterS === undefined ? undefined : { retryAfterS })
}

/** An upstream HTTP error answer: its own Anthropic message when it sent one, else the status. */
export function fromHttpStatus(status: number, body: string, retryAfterS: number | undefined, where: string): OrchestratorError {
  let message = `${where} answered ${status}`
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown } }
    if (typeof parsed.error?.message === 'string') message = `${where} answered ${status}: ${parsed.error.message}`
  } catch {
    if (body.trim()) message = `${where} answered ${status}: ${body.trim().slice(0, 500)}`
  }
  return new OrchestratorError(codeForStatus(status), message, retryAfterS === undefined ? undefined : { retryAfterS })
}
