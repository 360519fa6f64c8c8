/**
 * The request guard: runs on node's raw request before Hono, the router or any body parsing, and refuses what a local
 * proxy that spawns processes must never serve (docs/security.md):
 * - a request target that is not a canonical origin-form path (absolute-form `http://evil/…`, `//`, `.`/`..`
 *   segments, `%`-escapes, `\`): the guard and the router must see the same path (LiteLLM GHSA-4xpc-pv4p-pm3w), and
 *   @hono/node-server builds the URL from an absolute-form target, ignoring `Host`, and decodes `%2e`;
 * - a `Host` that is not ours (DNS rebinding, Ollama CVE-2024-28224): loopback names with any port, the bind address
 *   and `server.allowedHosts`; empty, or carrying a path, `@` or `#`, it matches nothing and is refused; two `Host`
 *   fields are a 400 (node keeps the first and drops the other, which a proxy in front may have read instead:
 *   RFC 9112 §3.2 says answer 400);
 * - an `Expect` other than `100-continue`: 417 (RFC 9110 §10.1.1), in our error shape rather than node's bare one;
 * - a browser request from a foreign page: an `Origin` that is neither this origin nor configured, or
 *   `Sec-Fetch-Site: cross-site`. No Origin at all is a CLI or an SDK (Claude Code sends none) and passes: the Host
 *   check is what stops a rebinding page (MCP Inspector CVE-2025-49596 failed open the other way round). A configured
 *   foreign origin opens the API only: `/admin`, `/metrics` and the dashboard need an admin key from it, so with no
 *   admin key configured they are closed to it (else that page could reload the config or drain accounts);
 * - a missing or wrong key, when keys are configured; `/admin`, `/metrics` and the dashboard need an admin key.
 * Everything it needs is computed once here; per request it does Set lookups and a loop over the path's characters.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import type { ServerConfig } from '../config/schema.ts'
import { OrchestratorError, codes, type Code } from '../errors.ts'
import { nextRequestId, sendError } from './answer.ts'
import { requestSettled } from '../metrics.ts'
import { discardRest } from './body.ts'
import { KeyRing, presentedKeys } from './keys.ts'

/** Returns true when the request may go on to the app; otherwise it has already been answered. */
export type Guard = (req: IncomingMessage, res: ServerResponse) => boolean

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]']
const UNSPECIFIED = new Set(['0.0.0.0', '::', '[::]'])

// RFC 3986 pchar minus "%": unreserved / sub-delims / ":" / "@". A "%" would let the router decode what we compared.
const PATH_CHAR = new Uint8Array(128)
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&\'()*+,;=:@') PATH_CHAR[c.charCodeAt(0)] = 1

const SLASH = 47
const DOT = 46

/** true for `/`, `/v1/messages`, `/v1/models/claude-x`; false for ``, `//x`, `/a/../b`, `/./`, `/%2e`, `/a\b`. */
export function isCanonicalPath(path: string): boolean {
  if (path.charCodeAt(0) !== SLASH) return false
  let segmentStart = 1
  for (let i = 1; i <= path.length; i++) {
    const c = i < path.length ? path.charCodeAt(i) : SLASH
    if (c === SLASH) {
      const len = i - segmentStart
      if (len === 0 && i < path.length) return false // "//" (a trailing "/" is allowed: the router refuses it itself)
      if (len === 1 && path.charCodeAt(segmentStart) === DOT) return false
      if (len === 2 && path.charCodeAt(segmentStart) === DOT && path.charCodeAt(segmentStart + 1) === DOT) return false
      segmentStart = i + 1
    } else if (c >= 128 || PATH_CHAR[c] === 0) return false
  }
  return true
}

/** Which key a path needs. The first segment decides, compared without case so `/ADMIN` cannot slip past. */
type Access = 'open' | 'client' | 'admin'
export function accessFor(method: string | undefined, path: string): Access {
  const end = path.indexOf('/', 1)
  const first = (end === -1 ? path.slice(1) : path.slice(1, end)).toLowerCase()
  if (first === '') return method === 'HEAD' ? 'open' : 'admin' // HEAD / is Claude Code's probe; GET / the dashboard
  if (first === 'admin' || first === 'metrics') return 'admin'
  if (first === 'healthz' || first === 'readyz') return 'open'
  return 'client'
}

/** How many `Host` fields the request carried: node's `headers.host` keeps the first only. */
function hostFields(raw: readonly string[]): number {
  let n = 0
  for (let i = 0; i < raw.length; i += 2) if (raw[i].length === 4 && raw[i].toLowerCase() === 'host') n++
  return n
}

export function createGuard(server: ServerConfig, log: Logger): Guard {
  const hostNames = new Set([...LOOPBACK_NAMES, ...server.allowedHosts])
  const bind = server.host.toLowerCase()
  if (!UNSPECIFIED.has(bind)) hostNames.add(bind.includes(':') && !bind.startsWith('[') ? `[${bind}]` : bind)
  const allowedOrigins = new Set(server.allowedOrigins)
  const adminKeys = new KeyRing(server.auth.adminKeys)
  // an admin key opens the API too: one ring, so a request hashes its key once
  const apiKeys = new KeyRing([...server.auth.keys, ...server.auth.adminKeys])
  const clientKeysConfigured = server.auth.keys.length > 0
  const keysConfigured = apiKeys.size > 0

  function hostAllowed(host: string | undefined): boolean {
    if (!host) return false
    let name: string
    let portStart: number
    if (host.charCodeAt(0) === 91 /* [ */) {
      portStart = host.indexOf(']') + 1
      if (portStart === 0) return false
      name = host.slice(0, portStart)
    } else {
      const colon = host.indexOf(':')
      portStart = colon === -1 ? host.length : colon
      name = host.slice(0, portStart)
    }
    if (portStart < host.length) {
      // ":" and 1–5 digits, nothing else (no path, no "@", no "#")
      if (host.charCodeAt(portStart) !== 58 || host.length - portStart > 6 || host.length - portStart < 2) return false
      for (let i = portStart + 1; i < host.length; i++) {
        const c = host.charCodeAt(i)
        if (c < 48 || c > 57) return false
      }
    }
    return hostNames.has(name) || hostNames.has(name.toLowerCase())
  }

  function refuse(req: IncomingMessage, res: ServerResponse, code: Code, message: string, extra?: Record<string, string>): false {
    const requestId = nextRequestId()
    sendError(res, requestId, new OrchestratorError(code, message), extra)
    discardRest(req)
    // answered before any timing began: counted with a zero duration, as a request that took no time of ours
    requestSettled(undefined, codes[code].status, '', code, undefined, undefined, 0)
    // client-supplied values go in fields only (JSON-escaped); `path` is cut so a refusal cannot flood the log
    log.warn({ reqId: requestId, status: codes[code].status, code, method: req.method, target: req.url?.slice(0, 200),
      host: req.headers.host?.slice(0, 200), origin: req.headers.origin?.slice(0, 200) }, 'request refused')
    return false
  }

  return function guard(req, res) {
    const target = req.url ?? ''
    const query = target.indexOf('?')
    const path = query === -1 ? target : target.slice(0, query)
    if (!isCanonicalPath(path)) {
      return refuse(req, res, 'AGYC_INVALID_REQUEST', 'the request target must be a plain path (no scheme, "//", ".", ".." or "%")')
    }
    const host = req.headers.host
    if (hostFields(req.rawHeaders) > 1) return refuse(req, res, 'AGYC_INVALID_REQUEST', 'a request carries one Host field')
    if (!hostAllowed(host)) return refuse(req, res, 'AGYC_FORBIDDEN', 'this Host is not served here')
    const expect = req.headers.expect
    if (expect !== undefined && expect.trim().toLowerCase() !== '100-continue') {
      return refuse(req, res, 'AGYC_EXPECTATION_FAILED', 'the only expectation served is "100-continue"')
    }

    const origin = req.headers.origin
    let cors = false
    if (origin !== undefined) {
      cors = allowedOrigins.has(origin) || allowedOrigins.has(origin.toLowerCase())
      const sameOrigin = origin === `http://${host}` || origin === `https://${host}`
      if (!cors && !sameOrigin) return refuse(req, res, 'AGYC_FORBIDDEN', 'requests from this Origin are not allowed')
      // an allowed page is a client of the API, not the operator: the admin side needs an admin key from it
      if (cors && !sameOrigin && adminKeys.size === 0 && accessFor(req.method, path) === 'admin') {
        return refuse(req, res, 'AGYC_FORBIDDEN', 'this Origin may call the API only')
      }
    }
    const site = req.headers['sec-fetch-site']
    if (!cors && (site === 'cross-site' || site === 'same-site')) {
      return refuse(req, res, 'AGYC_FORBIDDEN', 'cross-site requests are not allowed')
    }
    if (cors) {
      res.setHeader('access-control-allow-origin', origin!)
      res.setHeader('access-control-expose-headers', 'request-id, retry-after, x-agyc-account')
      res.setHeader('vary', 'origin')
      if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
        res.writeHead(204, {
          'access-control-allow-methods': 'GET, HEAD, POST',
          'access-control-allow-headers': 'content-type, x-api-key, authorization, anthropic-version, anthropic-beta, anthropic-dangerous-direct-browser-access',
          'access-control-max-age': '600',
        })
        res.end()
        return false
      }
    }

    if (!keysConfigured) return true
    const access = accessFor(req.method, path)
    if (access === 'open') return true
    const [apiKey, authorization] = presentedKeys(req.headers, access === 'admin')
    if (access === 'admin') {
      if (adminKeys.has(apiKey) || adminKeys.has(authorization)) return true
      return refuse(req, res, 'AGYC_UNAUTHORIZED', 'an admin key is required', { 'www-authenticate': 'Basic realm="agyc admin", charset="UTF-8"' })
    }
    if (!clientKeysConfigured) return true
    if (apiKeys.has(apiKey) || apiKeys.has(authorization)) return true
    return refuse(req, res, 'AGYC_UNAUTHORIZED', 'a valid API key is required (x-api-key or Authorization: Bearer)')
  }
}
