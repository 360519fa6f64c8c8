/**
 * The `server` section of the configuration reference: the listener, its keys, what the guard lets in, and every bound
 * and timeout a client meets (docs/security.md). Part of schema.ts, kept apart for its size.
 */
import { z } from 'zod'
import { secret } from './secret.ts'

export const positiveInt = (fallback: number) =>
  z.number({ error: 'expected a positive integer' }).int({ error: 'expected a positive integer' })
    .positive({ error: 'expected a positive integer' }).default(fallback)
export const nonNegativeInt = (fallback: number) =>
  z.number({ error: 'expected an integer ≥ 0' }).int({ error: 'expected an integer ≥ 0' })
    .nonnegative({ error: 'expected an integer ≥ 0' }).default(fallback)

/** Client and admin keys; none configured = open to whoever can reach a loopback port (docs/security.md). */
const Auth = z.strictObject({
  /** accepted as `x-api-key` or `Authorization: Bearer` on the API; each a string or `{"fromEnv": "NAME"}` */
  keys: z.array(secret(16)).default([]),
  /** required on `/admin/*`, `/metrics` and the dashboard `GET /` (also as the Basic-auth password, for browsers) */
  adminKeys: z.array(secret(16)).default([]),
})

/** a host name or address as it appears in `Host`, without the port: `proxy.lan`, `10.0.0.5`, `[fd00::1]` */
const HostName = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,252}))$/, { error: 'expected a host name without port, path or scheme' })
  .transform((h) => h.toLowerCase())
/** an exact origin: `https://app.example:8443` */
const Origin = z.string().regex(/^https?:\/\/[A-Za-z0-9.\-[\]:]+$/, { error: 'expected an origin like "https://app.example:8443" (scheme, host, optional port)' })
  .transform((o) => o.toLowerCase())

export const Server = z.strictObject({
  /** anything but a loopback address needs `auth.keys` (start-up refuses otherwise) */
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65535, { error: 'expected a port number 0–65535' }).default(8088),
  auth: Auth.default(Auth.parse({})),
  /** `Host` names served besides localhost, 127.0.0.1, [::1] and the bind address (DNS-rebinding defence) */
  allowedHosts: z.array(HostName).default([]),
  /** origins a browser page may call from; they get CORS headers. Default none: every foreign `Origin` is a 403 */
  allowedOrigins: z.array(Origin).default([]),
  /** 413 above this; Claude Code's first turn is ~50 KB, the Anthropic API allows 32 MB */
  bodyLimitBytes: positiveInt(32 * 1024 * 1024),
  /** request bodies being read and parsed at once, all clients together; a body past it gets a 529 at once */
  bodyBudgetBytes: positiveInt(96 * 1024 * 1024),
  /** 431 above this (all request headers together; Node's own default) */
  maxHeaderBytes: positiveInt(16 * 1024),
  /** the request line and headers must arrive within this (slow-headers clients; Node's default is 60 s) */
  headersTimeoutMs: positiveInt(10_000),
  /** the whole request, headers and body, must arrive within this; the answer may take longer */
  receiveTimeoutMs: positiveInt(120_000),
  /** longest silence while a body is arriving (slow-body clients) */
  bodyIdleTimeoutMs: positiveInt(15_000),
  /** messages per request (the Anthropic API's own limit is 100 000) */
  maxMessages: positiveInt(100_000),
  /** nesting depth of the request JSON; deeper is refused before any other check */
  maxJsonDepth: z.number().int().min(2).max(1000, { error: 'expected an integer 2–1000' }).default(64),
  /** a client that reads none of its answer for this long is cut and its request cancelled (a stalled reader) */
  writeStallTimeoutMs: positiveInt(60_000),
  /** SIGINT/SIGTERM: how long in-flight requests may take to finish */
  shutdownGraceMs: nonNegativeInt(10_000),
}).superRefine((server, ctx) => {
  if (server.headersTimeoutMs > server.receiveTimeoutMs) {
    ctx.addIssue({ code: 'custom', path: ['headersTimeoutMs'], message: 'expected at most receiveTimeoutMs' })
  }
  if (server.bodyBudgetBytes < server.bodyLimitBytes) {
    ctx.addIssue({ code: 'custom', path: ['bodyBudgetBytes'], message: 'expected at least bodyLimitBytes (a body at the limit must fit)' })
  }
})

