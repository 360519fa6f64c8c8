/**
 * The one place an error becomes an HTTP answer, and the headers every answer carries, built once: the guard, the
 * front doors, an exchange's failure, the Hono routes' onError and the parser's refusals on a raw socket all take
 * their status, headers and body from here. A front door names its wire shape (the Anthropic error body, or OpenAI's);
 * the `AGYC_*` code goes to the log line and the metrics, never to the client.
 */
import type { ServerResponse } from 'node:http'
import { randomBytes } from 'node:crypto'
import type { Logger } from 'pino'
import { codes, errorBody, retryAfterOf, type Code, type OrchestratorError } from '../errors.ts'
import { scrub } from '../config/known-secrets.ts'
import { errorEvent } from '../formats/anthropic-sse.ts'
import { requestSettled } from '../metrics.ts'

// unique for this process (a random boot prefix and a counter): cheaper than random bytes per request
const bootId = randomBytes(6).toString('base64url')
let requestCounter = 0
export const nextRequestId = (): string => `req_${bootId}${(++requestCounter).toString(36).padStart(6, '0')}`

/** How one wire shape writes an error: as a whole answer's body, and as the last event of a stream under way. */
export interface ErrorShape {
  body(error: OrchestratorError): string
  streamEvent(error: OrchestratorError): string
}

export const anthropicErrors: ErrorShape = {
  body: (error) => errorBody(error.code, error.message),
  streamEvent: (error) => errorEvent(codes[error.code].type, error.message),
}

/** OpenAI's error types, by our status: what its SDKs and clients branch on */
function openaiType(status: number): string {
  if (status === 400 || status === 404 || status === 405 || status === 413 || status === 431) return status === 404 ? 'not_found_error' : 'invalid_request_error'
  if (status === 401) return 'authentication_error'
  if (status === 403) return 'permission_error'
  if (status === 429) return 'rate_limit_error'
  if (status === 408 || status === 504) return 'timeout_error'
  if (status === 503 || status === 529) return 'overloaded_error'
  return 'server_error'
}

/** `{"error": {"message", "type", "param", "code"}}`: the doors of Chat Completions and Responses. */
export function openaiErrorObject(error: OrchestratorError): { message: string; type: string; param: string | null; code: string } {
  return { message: scrub(error.message), type: openaiType(codes[error.code].status), param: error.param ?? null, code: error.code.toLowerCase() }
}

export const openaiErrors: ErrorShape = {
  body: (error) => JSON.stringify({ error: openaiErrorObject(error) }),
  // the openai SDK throws on a data line carrying `error`, and on an `error` event (Responses)
  streamEvent: (error) => `event: error\ndata: ${JSON.stringify({ type: 'error', error: openaiErrorObject(error) })}\n\n`,
}

export type Headers = Record<string, string | number>

/** What identifies an answer to the client and to an operator: the request id, the account, the failovers. */
export function answerHeaders(base: Headers, requestId: string, account?: string, attempts = 0): Headers {
  const headers: Headers = { ...base, 'request-id': requestId }
  if (account !== undefined) headers['x-agyc-account'] = account
  if (attempts > 1) headers['x-agyc-attempts'] = attempts
  return headers
}

export interface ErrorAnswer {
  readonly status: number
  readonly headers: Headers
  readonly body: string
}

/** `error` as a whole HTTP answer: its status, its headers (retry-after when it has one) and its body in `shape`. */
export function errorAnswer(error: OrchestratorError, requestId: string, shape: ErrorShape = anthropicErrors,
  extra?: { account?: string | undefined; attempts?: number; headers?: Record<string, string> }): ErrorAnswer {
  const body = shape.body(error)
  const headers = answerHeaders({ 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...extra?.headers },
    requestId, extra?.account, extra?.attempts)
  const retryAfter = retryAfterOf(error)
  if (retryAfter !== undefined) headers['retry-after'] = retryAfter
  return { status: codes[error.code].status, headers, body }
}

/** Writes `error` as the whole answer on node's response. */
export function sendError(res: ServerResponse, requestId: string, error: OrchestratorError, extra?: Record<string, string>,
  shape: ErrorShape = anthropicErrors): void {
  const answer = errorAnswer(error, requestId, shape, { headers: extra })
  res.writeHead(answer.status, answer.headers)
  res.end(answer.body)
}

export interface LocalAnswer {
  reqId: string
  method: string | undefined
  path: string
  status: number
  code: Code | undefined
  durationMs: number
}

/**
 * A request answered here, not by a job: its access line, and for an error its count in the metrics. A successful
 * probe or scrape is logged, not counted: `agyc_requests_total` and the dashboard's timeline are about the traffic
 * being served. `accessLog` is a child without path redaction (the line holds only our own fields).
 */
export function settledLocally(accessLog: Logger, answer: LocalAnswer): void {
  if (answer.code !== undefined) requestSettled(undefined, answer.status, '', answer.code, undefined, undefined, answer.durationMs)
  if (!accessLog.isLevelEnabled('info')) return
  accessLog.info({ ...answer, path: answer.path.slice(0, 200) }, 'request')
}
