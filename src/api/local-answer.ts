/**
 * Answers the main thread makes itself, with no job behind them (refusals, bad requests, a full queue): the request id
 * every response carries, the error written straight to node's response, and the access line and count each answer
 * gets. Used where Hono is not in the way (the guard, POST /v1/messages); Hono's own routes answer through app.ts.
 */
import type { ServerResponse } from 'node:http'
import { randomBytes } from 'node:crypto'
import type { Logger } from 'pino'
import { codes, errorBody, retryAfterOf, type Code, type OrchestratorError } from '../errors.ts'
import { requestSettled } from '../metrics.ts'

// unique for this process (a random boot prefix and a counter): cheaper than random bytes per request
const bootId = randomBytes(6).toString('base64url')
let requestCounter = 0
export const nextRequestId = (): string => `req_${bootId}${(++requestCounter).toString(36).padStart(6, '0')}`

/** Writes `error` in the Anthropic shape, with its retry-after when it has one. */
export function sendError(res: ServerResponse, requestId: string, error: OrchestratorError, extra?: Record<string, string>): void {
  const body = errorBody(error.code, error.message)
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'request-id': requestId,
    ...extra,
  }
  const retryAfter = retryAfterOf(error)
  if (retryAfter !== undefined) headers['retry-after'] = retryAfter
  res.writeHead(codes[error.code].status, headers)
  res.end(body)
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
