/**
 * The HTTP front: the guard first, then POST /v1/messages straight on node's request and response (the hot path:
 * Hono's routing and context were ~5 % of the main thread's time and ~19 % of its allocation per request, README
 * "What the thread hop costs"), and every other route through the Hono app, the only place its errors become responses.
 */
import { Hono, type Context } from 'hono'
import { getRequestListener, type HttpBindings } from '@hono/node-server'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import type { Config } from '../config/schema.ts'
import type { Dispatcher } from '../dispatch/dispatcher.ts'
import { scrub } from '../config/secret.ts'
import { OrchestratorError, codes, retryAfterOf, toOrchestratorError, type Code } from '../errors.ts'
import { adminRoutes, type Operations } from './admin.ts'
import type { Guard } from './guard.ts'
import { nextRequestId, settledLocally } from './answer.ts'
import { countTokensHandler, messagesEndpoint, isMessagesTarget } from './messages.ts'
import { modelsHandlers } from './models.ts'

export type AppEnv = { Bindings: HttpBindings; Variables: { requestId: string; code?: Code } }

export interface AppDeps {
  config: Config
  dispatcher: Dispatcher
  log: Logger
  /** true once shutdown began: new requests get 503 */
  isClosing(): boolean
  /** reload and reload state, for the admin routes */
  operations?: Operations
}

/** Methods each known path answers; any other method there is a 405, any other path a 404. */
const ROUTES: Record<string, string[]> = {
  '/': ['GET', 'HEAD'],
  '/healthz': ['GET', 'HEAD'],
  '/readyz': ['GET', 'HEAD'],
  '/metrics': ['GET', 'HEAD'],
  '/admin/accounts': ['GET', 'HEAD'],
  '/admin/events': ['GET'],
  '/admin/reload': ['POST'],
  '/v1/messages': ['POST'],
  '/v1/messages/count_tokens': ['POST'],
  '/v1/models': ['GET'],
}

/** node's request listener: the guard, then POST /v1/messages on its own, then the Hono app. */
export function createHandler(deps: AppDeps, guard: Guard): (req: IncomingMessage, res: ServerResponse) => void {
  const messages = messagesEndpoint(deps)
  const hono = getRequestListener(createApp(deps).fetch)
  return function handle(req, res) {
    if (!guard(req, res)) return
    if (req.method === 'POST' && isMessagesTarget(req.url)) messages(req, res)
    else void hono(req, res)
  }
}

function createApp(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>()
  const models = modelsHandlers(deps)

  // the access line carries only our own fields (a client's path only inside one): no path redaction, as messages.ts
  const accessLog = deps.log.child({}, { redact: { paths: [] } })
  app.use(async (c, next) => {
    const requestId = nextRequestId()
    c.set('requestId', requestId)
    const receivedAt = Date.now()
    if (deps.isClosing() && c.req.path !== '/healthz') {
      c.header('connection', 'close')
      const res = answer(c, new OrchestratorError('AGYC_SHUTTING_DOWN', 'the orchestrator is shutting down'))
      settledHere(c, res.status, receivedAt)
      return res
    }
    await next()
    // an answer written straight to node's response carries its request-id already and was logged by its job (an
    // Exchange); the shared sentinel is not ours to stamp (Headers.set on it was ~1 % of the main thread in the
    // benchmark's profile)
    if (c.res !== RESPONSE_ALREADY_SENT) {
      c.res.headers.set('request-id', requestId)
      settledHere(c, c.res.status, receivedAt)
    }
  })

  /** A request answered here (probes, admin, models, count_tokens, and every error of theirs): local-answer.ts. */
  function settledHere(c: Context<AppEnv>, status: number, receivedAt: number): void {
    settledLocally(accessLog, { reqId: c.get('requestId'), method: c.req.method, path: c.req.path, status, code: c.get('code'), durationMs: Date.now() - receivedAt })
  }

  app.post('/v1/messages/count_tokens', countTokensHandler(deps))
  app.get('/v1/models', models.list)
  app.get('/v1/models/:id', models.get)
  app.get('/healthz', (c) => c.json({ status: 'ok' }))
  app.on('HEAD', '/', (c) => c.body(null, 200)) // Claude Code probes it
  adminRoutes(app, deps)

  app.notFound((c) => {
    const allowed = ROUTES[c.req.path] ?? (c.req.path.startsWith('/v1/models/') ? ['GET']
      : /^\/admin\/accounts\/[^/]+\/(drain|resume)$/.test(c.req.path) ? ['POST'] : undefined)
    if (allowed) {
      c.header('allow', allowed.join(', '))
      return answer(c, new OrchestratorError('AGYC_METHOD_NOT_ALLOWED', `${c.req.method} is not allowed on ${c.req.path} (allowed: ${allowed.join(', ')})`))
    }
    return answer(c, new OrchestratorError('AGYC_NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`))
  })

  app.onError((err, c) => {
    const error = toOrchestratorError(err)
    if (codes[error.code].status >= 500 && error.code !== 'AGYC_SHUTTING_DOWN' && error.code !== 'AGYC_NOT_READY') deps.log.error({ err, code: error.code, reqId: c.get('requestId') }, 'request failed')
    // logged and counted by the middleware, as every answer made here
    return answer(c, error)
  })

  return app
}

function answer(c: Context<AppEnv>, error: OrchestratorError): Response {
  const spec = codes[error.code]
  c.set('code', error.code)
  const retryAfter = retryAfterOf(error)
  if (retryAfter !== undefined) c.header('retry-after', String(retryAfter))
  c.header('request-id', c.get('requestId') ?? nextRequestId())
  // 529 and 499 are not in hono's status types: the cast is deliberate
  return c.json({ type: 'error', error: { type: spec.type, message: scrub(error.message) } }, spec.status as ContentfulStatusCode)
}
