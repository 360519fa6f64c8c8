/**
 * The front doors that run a request on an account: POST /v1/messages (Anthropic), POST /v1/chat/completions and
 * POST /v1/responses (OpenAI's, translated to Messages by src/formats/ and answered in their own shape by the worker's
 * framer), each on node's request and response (no Hono on the hot path: app.ts); and POST /v1/messages/count_tokens,
 * a Hono route. A door reads, checks and admits; nothing more.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Context } from 'hono'
import { OrchestratorError, codes, specOf, toOrchestratorError } from '../errors.ts'
import { accessLineWriter } from './access-line.ts'
import { anthropicErrors, nextRequestId, openaiErrors, sendError, settledLocally, type ErrorShape } from './answer.ts'
import type { BodyBudget } from './body-budget.ts'
import { readChecked } from './body-check.ts'
import { discardRest } from './body.ts'
import { Exchange } from './exchange.ts'
import { doorRequest } from '../metrics.ts'
import type { AppEnv, AppDeps } from './app.ts'

/** A door: its path, what its body is (request-check.ts) and the shape of its errors. */
interface Door {
  readonly path: string
  readonly kind: 'messages' | 'openai-chat' | 'openai-responses'
  readonly errors: ErrorShape
  /** the answer's wire format, for the worker's framer (absent: Anthropic's) */
  readonly format?: 'openai-chat' | 'openai-responses'
}

export const DOORS = {
  messages: { path: '/v1/messages', kind: 'messages', errors: anthropicErrors },
  chat: { path: '/v1/chat/completions', kind: 'openai-chat', errors: openaiErrors, format: 'openai-chat' },
  responses: { path: '/v1/responses', kind: 'openai-responses', errors: openaiErrors, format: 'openai-responses' },
} as const satisfies Record<string, Door>

export function frontDoor({ dispatcher, config, log, isClosing, cluster }: AppDeps, bodies: BodyBudget, door: Door) {
  const PATH = door.path
  // the access lines carry only our own fields, never a secret: path redaction (≈ 9 µs a line, most of the line's
  // cost in the profile) is skipped for them, and a job's line is serialised by hand (access-line.ts)
  const accessLog = log.child({}, { redact: { paths: [] } })
  const accessLine = accessLineWriter(accessLog)

  return function postToDoor(req: IncomingMessage, res: ServerResponse): void {
    const requestId = nextRequestId()
    const receivedAt = Date.now()
    if (isClosing()) {
      // the body is not wanted, but a client still sending it must get to read the answer (body.ts, discardRest)
      discardRest(req)
      refuse(req, res, requestId, receivedAt, new OrchestratorError('AGYC_SHUTTING_DOWN', 'the orchestrator is shutting down'), { connection: 'close' })
      return
    }
    accept(req, res, requestId, receivedAt).catch((err: unknown) => refuse(req, res, requestId, receivedAt, err))
  }

  /** Reads, checks and admits the request; a job's answer and line are then its Exchange's. Throws what to answer. */
  async function accept(req: IncomingMessage, res: ServerResponse, requestId: string, receivedAt: number): Promise<void> {
    const { body, checked } = await readChecked(req, config.server, bodies, door.kind)
    const request = checked.request
    const admission = {
      requestId, receivedAt, request, body: checked.body ?? body, headers: req.headers, affinity: checked.affinity, continues: checked.continues,
      format: door.format, includeUsage: checked.includeUsage,
    }
    // a fleet: forwarded as the client sent it to the node that holds its conversation or tool call, or has room
    if (cluster !== undefined && await cluster.route.take(req, res, admission, { path: PATH, body, errors: door.errors })) return
    const exchange = new Exchange(res, requestId, request.stream === true, dispatcher, accessLine, config.server.writeStallTimeoutMs, door.errors)
    dispatcher.admit(admission, exchange) // throws the 4xx/529/503 to answer now
    doorRequest(door.path)
  }

  /** An answer before any job took the request: the error, its line and its count. */
  function refuse(req: IncomingMessage, res: ServerResponse, requestId: string, receivedAt: number, err: unknown, extra?: Record<string, string>): void {
    const error = toOrchestratorError(err)
    const status = codes[error.code].status
    // an overload refusal of ours (529, 503) is protection working: its access line says it, no error log with a stack
    if (status >= 500 && !specOf(error.code).localOrigin) log.error({ err, code: error.code, reqId: requestId }, 'request failed')
    if (res.headersSent) res.destroy() // not reached: nothing is written before a job exists; never a second answer
    else sendError(res, requestId, error, extra, door.errors)
    settledLocally(accessLog, { reqId: requestId, method: req.method, path: PATH, status, code: error.code, durationMs: Date.now() - receivedAt })
  }

}

/** Answered locally: an estimate (docs/api.md, "count_tokens"), never a request to an account. */
export function countTokensHandler({ config }: AppDeps, bodies: BodyBudget) {
  return async function countTokens(c: Context<AppEnv>): Promise<Response> {
    const { checked } = await readChecked(c.env.incoming, config.server, bodies, 'count_tokens')
    return c.json({ input_tokens: checked.inputTokens })
  }
}
