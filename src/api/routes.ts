/**
 * The route table, declared once: each route is `"METHOD /path"` (Hono's path syntax) and its handler. The front
 * doors on the hot path take node's request and response (no Hono: app.ts); every other route is a Hono handler. The
 * 405 answer's `allow` list is read off the same table, so a route cannot exist without its methods being known.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Handler } from 'hono'
import type { AppEnv } from './app.ts'

export type Method = 'GET' | 'HEAD' | 'POST'
export type RouteKey = `${Method} /${string}`

/** A front door on node's request and response: it answers (and logs) every request it takes. */
export type NodeHandler = (req: IncomingMessage, res: ServerResponse) => void

export type Route = { readonly node: NodeHandler } | { readonly hono: Handler<AppEnv> }
export type RouteTable = Partial<Record<RouteKey, Route>>

interface Compiled {
  readonly method: Method
  readonly path: string
  readonly pattern: RegExp
}

/** `/admin/accounts/:id/drain` → a pattern that matches one segment for each `:param` */
const patternOf = (path: string): RegExp =>
  new RegExp(`^${path.split('/').map((s) => (s.startsWith(':') ? '[^/]+' : s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/')}$`)

export class Routes {
  readonly table: RouteTable
  readonly #compiled: Compiled[]
  /** exact "METHOD path" → front door, for the hot path: one Map lookup */
  readonly #nodeDoors = new Map<string, NodeHandler>()

  constructor(table: RouteTable) {
    this.table = table
    this.#compiled = Object.keys(table).map((key) => {
      const space = key.indexOf(' ')
      const path = key.slice(space + 1)
      return { method: key.slice(0, space) as Method, path, pattern: patternOf(path) }
    })
    for (const [key, route] of Object.entries(table) as [RouteKey, Route][]) {
      if ('node' in route) this.#nodeDoors.set(key, route.node)
    }
  }

  /** The front door that takes `method path` on node's objects, if one does. */
  door(method: string | undefined, path: string): NodeHandler | undefined {
    return this.#nodeDoors.get(`${method} ${path}`)
  }

  /** The methods a known path answers (HEAD comes with GET, as Hono serves it), or undefined for an unknown path. */
  allowed(path: string): Method[] | undefined {
    const methods = new Set<Method>()
    for (const route of this.#compiled) if (route.pattern.test(path)) methods.add(route.method)
    return methods.size === 0 ? undefined : [...methods]
  }

  /** The Hono routes, for the app to register. */
  *honoRoutes(): Iterable<{ method: Method; path: string; handler: Handler<AppEnv> }> {
    for (const route of this.#compiled) {
      const entry = this.table[`${route.method} ${route.path}` as RouteKey]!
      if ('hono' in entry) yield { method: route.method, path: route.path, handler: entry.hono }
    }
  }
}
