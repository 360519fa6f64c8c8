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
import type { ClusterDeps } from '../cluster/node.ts'
import { scrub } from '../config/secret.ts'
import { OrchestratorError, codes, retryAfterOf, toOrchestratorError, type Code } from '../errors.ts'
import { adminRoutes, type Operations } from './admin.ts'
import type { Guard } from './guard.ts'
import { errorAnswer, nextRequestId, settledLocally } from './answer.ts'
import { DOORS, countTokensHandler, frontDoor } from './messages.ts'
import { Routes, type RouteTable } from './routes.ts'
import { BodyBudget } from './body-budget.ts'
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
  /** a fleet (`cluster`): the router the front doors ask first, and /admin/cluster (src/cluster/node.ts) */
  cluster?: ClusterDeps | undefined
}

/** Every route, once: the front doors on node's objects and the Hono routes (routes.ts). */
function routeTable(deps: AppDeps): RouteTable {
  const models = modelsHandlers(deps)
  const bodies = new BodyBudget(deps.config.server.bodyBudgetBytes)
  return {
    'POST /v1/messages': { node: frontDoor(deps, bodies, DOORS.messages) },
    'POST /v1/chat/completions': { node: frontDoor(deps, bodies, DOORS.chat) },
    'POST /v1/responses': { node: frontDoor(deps, bodies, DOORS.responses) },
    'POST /v1/messages/count_tokens': { hono: countTokensHandler(deps, bodies) },
    'GET /v1/models': { hono: models.list },
    'GET /v1/models/:id': { hono: models.get },
    'GET /healthz': { hono: (c) => c.json({ status: 'ok' }) },
    'HEAD /': { hono: (c) => c.body(null, 200) }, // Claude Code probes it
    ...adminRoutes(deps),
  }
}

/** node's request listener: the guard, then a front door on node's objects when one takes the route, else Hono. */
export function createHandler(deps: AppDeps, guard: Guard): (req: IncomingMessage, res: ServerResponse) => void {
  const routes = new Routes(routeTable(deps))
  const hono = getRequestListener(createApp(deps, routes).fetch)
  return function handle(req, res) {
    if (!guard(req, res)) return
    const url = req.url ?? ''
    const query = url.indexOf('?') // `?beta=true`, as the SDK's beta client sends; the guard checked the path
    const door = routes.door(req.method, query === -1 ? url : url.slice(0, query))
    if (door) door(req, res)
    else void hono(req, res)
  }
}

function createApp(deps: AppDeps, routes: Routes): Hono<AppEnv> {
  const app = new Hono<AppEnv>()

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

  for (const route of routes.honoRoutes()) app.on(route.method, route.path, route.handler)

  app.notFound((c) => {
    const allowed = routes.allowed(c.req.path)
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

/** A Hono route's error, as the funnel (answer.ts) writes it; the middleware logs and counts it. */
function answer(c: Context<AppEnv>, error: OrchestratorError): Response {
  c.set('code', error.code)
  const { status, headers, body } = errorAnswer(error, c.get('requestId') ?? nextRequestId())
  for (const name in headers) c.header(name, String(headers[name]))
  return c.body(body, status as ContentfulStatusCode) // 529 and 499 are not in hono's status types: the cast is deliberate
}
