/**
 * The configuration reference: every field, its default and what it means. `load.ts` turns problems into one line
 * each (`accounts[3].maxConcurrency: expected a positive integer`).
 */
import { z } from 'zod'
import { secret } from './secret.ts'

const positiveInt = (fallback: number) =>
  z.number({ error: 'expected a positive integer' }).int({ error: 'expected a positive integer' })
    .positive({ error: 'expected a positive integer' }).default(fallback)
const nonNegativeInt = (fallback: number) =>
  z.number({ error: 'expected an integer ≥ 0' }).int({ error: 'expected an integer ≥ 0' })
    .nonnegative({ error: 'expected an integer ≥ 0' }).default(fallback)

export const strategyNames = ['round-robin', 'least-recently-used', 'health-score'] as const
/** Accepted spellings, in config and in `metadata.routing.strategyHint`. */
export const strategyAliases: Record<string, StrategyName> = {
  'round-robin': 'round-robin', rr: 'round-robin',
  'least-recently-used': 'least-recently-used', lru: 'least-recently-used',
  'health-score': 'health-score', health: 'health-score',
}
export type StrategyName = (typeof strategyNames)[number]
const Strategy = z.string().transform((name, ctx) => {
  const canonical = strategyAliases[name]
  if (canonical) return canonical
  ctx.addIssue({ code: 'custom', message: `unknown strategy "${name}" (expected one of ${Object.keys(strategyAliases).join(', ')})` })
  return z.NEVER
})

/** Built in, runs inside the account's worker: deterministic text, configurable latency and chunking. */
const MockSession = z.strictObject({
  kind: z.literal('mock'),
  /** the answer; `{account}`, `{model}` and `{prompt}` (the last user text) are filled in */
  text: z.string().default('Hello from {account}. This is a deterministic answer from the built-in mock session.'),
  /** ms before the first token */
  latencyMs: nonNegativeInt(0),
  /** how many text deltas a streamed answer is cut into */
  deltas: positiveInt(8),
  /** ms between deltas */
  deltaDelayMs: nonNegativeInt(0),
  /**
   * Test hooks: `[[mock:sleep 500]]`, `[[mock:fail CODE]]`, `[[mock:crash]]`, `[[mock:hang]]` in the prompt.
   * Off by default: a request must never control the process that serves it.
   */
  directives: z.boolean().default(false),
})

export const Session = z.discriminatedUnion('kind', [MockSession], {
  error: (issue) => issue.code === 'invalid_union' ? 'unknown session kind (expected "mock")' : undefined,
})
export type SessionConfig = z.infer<typeof Session>

const accountId = z.string({ error: 'expected a string' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { error: 'expected 1–64 letters, digits, ".", "_" or "-"' })

export const Account = z.strictObject({
  id: accountId,
  /** the account's own directory; relative paths resolve against the config file; default `<stateRoot>/<id>` */
  stateDir: z.string().min(1).optional(),
  maxConcurrency: positiveInt(4),
  session: Session,
  /** models this account serves; the first is its default for requests naming a model nobody declares */
  models: z.array(z.string().min(1)).min(1).optional(),
})
export type AccountConfig = z.infer<typeof Account> & { stateDir: string }

/** Client and admin keys; none configured = open to whoever can reach a loopback port (README, Security). */
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
  /** SIGINT/SIGTERM: how long in-flight requests may take to finish */
  shutdownGraceMs: nonNegativeInt(10_000),
}).superRefine((server, ctx) => {
  if (server.headersTimeoutMs > server.receiveTimeoutMs) {
    ctx.addIssue({ code: 'custom', path: ['headersTimeoutMs'], message: 'expected at most receiveTimeoutMs' })
  }
})

export const Dispatcher = z.strictObject({
  strategy: Strategy.default('round-robin'),
  /** requests waiting for any account; beyond it: 529 at once */
  globalQueueSize: nonNegativeInt(1024),
  /** requests handed to a busy account's worker, waiting there for a slot */
  accountQueueSize: nonNegativeInt(4),
  /** longest wait in a queue before a 529 */
  queueTimeoutMs: positiveInt(30_000),
  /** one deadline for queue wait and the session's answer (Claude Code itself waits 600 s) */
  requestTimeoutMs: positiveInt(600_000),
  /** `max_tokens` when a request omits it (the seed's own curl example does) */
  defaultMaxTokens: positiveInt(4096),
  /** refuse models no account declares (404) instead of serving them with an account's default */
  strictModels: z.boolean().default(false),
})

export const Log = z.strictObject({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** human-readable lines (pino-pretty); default: JSON */
  pretty: z.boolean().default(false),
})

export const Health = z.strictObject({
  heartbeatMs: positiveInt(1000),
})

export const Config = z.strictObject({
  $schema: z.string().optional(),
  server: Server.default(Server.parse({})),
  dispatcher: Dispatcher.default(Dispatcher.parse({})),
  health: Health.default(Health.parse({})),
  log: Log.default(Log.parse({})),
  /** parent of default state directories; relative to the config file */
  stateRoot: z.string().min(1).default('.state'),
  /** every account's stateDir must lie under stateRoot: no `..`, no symbolic link on the way (README, Security) */
  confineStateDirs: z.boolean().default(false),
  accounts: z.array(Account, { error: 'expected an array of accounts' }).min(1, { error: 'expected at least one account' }),
}).superRefine((config, ctx) => {
  const ids = new Set<string>()
  config.accounts.forEach((account, i) => {
    if (ids.has(account.id)) ctx.addIssue({ code: 'custom', path: ['accounts', i, 'id'], message: `duplicate account id "${account.id}"` })
    ids.add(account.id)
  })
})

export type Config = Omit<z.infer<typeof Config>, 'accounts'> & { accounts: AccountConfig[] }
export type ServerConfig = z.infer<typeof Server>
export type DispatcherConfig = z.infer<typeof Dispatcher>
