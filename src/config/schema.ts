/**
 * The configuration reference: every field, its default and what it means. `load.ts` turns problems into one line
 * each (`accounts[3].maxConcurrency: expected a positive integer`).
 */
import { z } from 'zod'
import { envName, secret } from './secret.ts'
import { Cluster } from '../cluster/config.ts'

import { Server, nonNegativeInt, positiveInt } from './server-schema.ts'

export { Server }

export const strategyNames = ['round-robin', 'least-recently-used', 'health-score', 'random', 'least-busy', 'power-of-two-choices', 'quota'] as const
/** Accepted spellings, in config and in `metadata.routing.strategyHint`. */
export const strategyAliases: Record<string, StrategyName> = {
  'round-robin': 'round-robin', rr: 'round-robin',
  'least-recently-used': 'least-recently-used', lru: 'least-recently-used',
  'health-score': 'health-score', health: 'health-score',
  random: 'random', quota: 'quota', 'least-busy': 'least-busy', 'power-of-two-choices': 'power-of-two-choices', p2c: 'power-of-two-choices',
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
   * Test hooks: `[[mock:sleep 500]]`, `[[mock:fail CODE]]`, `[[mock:crash]]`, `[[mock:hang]]` (busy loop), `[[mock:block]]` (blocked loop) in the prompt.
   * Off by default: a request must never control the process that serves it.
   */
  directives: z.boolean().default(false),
})

/** A secret or setting taken from the orchestrator's environment at account start, by name; never logged. */
const FromEnv = z.strictObject({ fromEnv: envName })
/** a credential (`apiKey`, `authToken`): only ever named, never written in the file, which is shared and committed */
const CredentialFromEnv = z.strictObject(FromEnv.shape, {
  error: (issue) => (issue.code === 'invalid_type'
    ? 'expected {"fromEnv": "NAME"}: put the key in an environment variable and name the variable here (a key is never written in the config file)'
    : undefined),
})
/** `"text"` (`{stateDir}` is filled in) or `{"fromEnv": "VAR"}` */
const EnvValue = z.union([z.string(), FromEnv], { error: 'expected a string or {"fromEnv": "VAR"}' })
/**
 * Extra variables for the child. Its environment is an allowlist: PATH, LANG, LC_*, TZ from ours, then HOME (the
 * state directory), TMPDIR (`<stateDir>/tmp`), AGYC_STATE_DIR, AGYC_ACCOUNT_ID, then these.
 */
const ChildEnv = z.record(envName, EnvValue).default({})

/** What every child-process session shares: an argv (never a shell) and how to stop it. */
const childFields = {
  /** an executable; `"node"` is the Node running the orchestrator; `./x` and `../x` resolve against the config file */
  command: z.string().min(1),
  /** argv, one element each, never through a shell; `./x` and `../x` resolve against the config file */
  args: z.array(z.string()).default([]),
  env: ChildEnv,
  /** SIGTERM to the child's process group, then SIGKILL after this long */
  killGraceMs: nonNegativeInt(2_000),
}

/** Restart policy of a long-lived child (PM2's delays, systemd's start limit; docs/session-kinds.md, "stdio"). */
const Restart = z.strictObject({
  initialDelayMs: nonNegativeInt(100),
  factor: z.number().min(1).default(1.5),
  maxDelayMs: nonNegativeInt(15_000),
  /** the delay starts over once a child stayed up this long */
  resetAfterMs: nonNegativeInt(30_000),
  /** more than `burst` starts within `windowMs` mark the account failed until reset */
  burst: positiveInt(5),
  windowMs: positiveInt(10_000),
})

/** A process per request (docs/session-kinds.md, "exec"). */
const ExecSession = z.strictObject({
  kind: z.literal('exec'),
  ...childFields,
  /** stdin gets the request as JSON, the last user text, or nothing; then EOF. `{prompt}` in args works with any */
  input: z.enum(['request', 'prompt', 'none']).default('request'),
  /** stdout is plain text, one Anthropic message as JSON, or JSON lines of Anthropic stream events */
  output: z.enum(['text', 'message', 'events']).default('text'),
  /** longest silence on stdout while a request runs, then the child is killed (AGYC_UPSTREAM_TIMEOUT) */
  idleTimeoutMs: positiveInt(300_000),
  /** a child writing more than this is killed */
  maxOutputBytes: positiveInt(16 * 1024 * 1024),
  /** processes started ahead, waiting on stdin for their request; args must not depend on the request */
  prewarm: nonNegativeInt(0),
}).superRefine((s, ctx) => {
  if (s.prewarm > 0 && s.args.some((a) => /\{(prompt|model|requestFile)\}/.test(a))) {
    ctx.addIssue({ code: 'custom', path: ['prewarm'], message: 'prewarm needs args without {prompt}, {model} or {requestFile} (they are not known ahead)' })
  }
  if (s.prewarm > 0 && s.input === 'none') {
    ctx.addIssue({ code: 'custom', path: ['prewarm'], message: 'prewarm needs input "request" or "prompt" (a warm process reads its request on stdin)' })
  }
})

/** One long-lived child speaking line-delimited JSON (docs/session-kinds.md, "stdio"). */
const StdioSession = z.strictObject({
  kind: z.literal('stdio'),
  ...childFields,
  /** the child must answer the first ping within this long */
  startTimeoutMs: positiveInt(30_000),
  /** longest silence on a running request, then it fails with AGYC_UPSTREAM_TIMEOUT */
  idleTimeoutMs: positiveInt(300_000),
  /** a ping this often; no pong within the same time and the child is restarted; 0 = never */
  pingIntervalMs: nonNegativeInt(10_000),
  /** a stdout line longer than this is a protocol error */
  maxLineBytes: positiveInt(16 * 1024 * 1024),
  restart: Restart.default(Restart.parse({})),
})

/** The account's own local server, started and owned by its worker. */
const HttpStart = z.strictObject({
  ...childFields,
  /** GET until it answers 2xx; default: the base URL */
  readyUrl: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).optional(),
  readyTimeoutMs: positiveInt(15_000),
  restart: Restart.default(Restart.parse({})),
})

/** An Anthropic-compatible upstream over HTTP (docs/session-kinds.md, "http"). */
const HttpSession = z.strictObject({
  kind: z.literal('http'),
  /**
   * what the upstream speaks: Anthropic's Messages API (`/v1/messages` is appended to baseUrl), or OpenAI's Chat
   * Completions (`/chat/completions` is appended: give the base URL with its version, e.g. `https://api.openai.com/v1`)
   */
  dialect: z.enum(['anthropic', 'openai-chat'], { error: 'expected "anthropic" or "openai-chat"' }).default('anthropic'),
  baseUrl: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }),
  /** sent as `x-api-key` (`authorization: Bearer` with the openai-chat dialect) */
  apiKey: CredentialFromEnv.optional(),
  /** sent as `authorization: Bearer …` */
  authToken: CredentialFromEnv.optional(),
  headers: z.record(z.string().regex(/^[A-Za-z0-9-]+$/, { error: 'expected a header name' }), EnvValue).default({}),
  anthropicVersion: z.string().default('2023-06-01'),
  /** keep-alive connections; default: the account's maxConcurrency */
  connections: z.number().int().positive().optional(),
  connectTimeoutMs: positiveInt(10_000),
  /** until the upstream's status line and headers */
  headersTimeoutMs: positiveInt(300_000),
  /** longest silence between body chunks */
  bodyTimeoutMs: positiveInt(300_000),
  start: HttpStart.optional(),
})

/**
 * What the three agent-CLI presets share (docs/agent-clis.md). The preset knows the CLI's flags, its
 * machine-readable mode, its state directory variables and how to keep it quiet; the config says where it talks to.
 */
const presetFields = {
  /** the CLI's executable; default: found on PATH, else in this project's node_modules/.bin */
  command: z.string().min(1).optional(),
  /** appended to the preset's own arguments, one element each */
  extraArgs: z.array(z.string()).default([]),
  /** extra variables for the CLI, after the preset's own (same rules as a child's `env`) */
  env: ChildEnv,
  killGraceMs: nonNegativeInt(2_000),
  /** the CLI's own base-URL setting (a gateway or a local model server); default: the vendor's API */
  baseUrl: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).optional(),
  /** the API key the CLI sends; without one the CLI uses its own login (`agyc accounts login <id>`) */
  apiKey: CredentialFromEnv.optional(),
  /** the model the CLI runs; fixed per account (declare `models` on the account to route by name) */
  model: z.string().min(1).optional(),
  /** added to the CLI's own system prompt */
  systemPrompt: z.string().optional(),
  /** longest silence from the CLI while a request runs, then AGYC_UPSTREAM_TIMEOUT */
  idleTimeoutMs: positiveInt(300_000),
  /** whose tools the CLI runs: "auto" the client's when the request declares or answers some (docs/agent-clis.md) */
  tools: z.enum(['auto', 'client', 'agent'], { error: 'expected "auto", "client" or "agent"' }).default('auto'),
  /** how long a CLI waits, parked, for the client's tool_result (Gemini CLI's bridge: at most 9 min 45 s) */
  toolResultTimeoutMs: positiveInt(600_000),
}

/** Claude Code: a process per request, started ahead (its stream-json input mode is one conversation per process). */
const ClaudeCodeSession = z.strictObject({
  kind: z.literal('claude-code'),
  ...presetFields,
  /** sent as `Authorization: Bearer` (ANTHROPIC_AUTH_TOKEN) instead of an API key */
  authToken: CredentialFromEnv.optional(),
  /** processes started ahead, each waiting for its one request */
  prewarm: nonNegativeInt(1),
  /** CLAUDE_CODE_MAX_RETRIES: the orchestrator's failover decides, so at most one retry of its own */
  maxRetries: z.number().int().min(0).max(1, { error: 'expected 0 or 1 (the orchestrator fails over itself)' }).default(0),
  maxOutputBytes: positiveInt(16 * 1024 * 1024),
})

/** Gemini CLI: one long-lived `gemini --acp` per account, a fresh ACP session per request. */
const GeminiCliSession = z.strictObject({
  kind: z.literal('gemini-cli'),
  ...presetFields,
  /** without `-m` Gemini CLI routes through a classifier call first (and retries it for a minute) */
  model: z.string().min(1).default('gemini-2.5-flash'),
  startTimeoutMs: positiveInt(60_000),
  maxLineBytes: positiveInt(16 * 1024 * 1024),
  restart: Restart.default(Restart.parse({})),
})

/** Codex: one long-lived `codex app-server` per account, an ephemeral thread per request. */
const CodexSession = z.strictObject({
  kind: z.literal('codex'),
  ...presetFields,
  startTimeoutMs: positiveInt(30_000),
  maxLineBytes: positiveInt(16 * 1024 * 1024),
  restart: Restart.default(Restart.parse({})),
})

export const presetKinds = ['claude-code', 'gemini-cli', 'codex'] as const
export type PresetKind = (typeof presetKinds)[number]

const sessionKinds = ['mock', 'exec', 'stdio', 'http', ...presetKinds] as const
export const Session = z.discriminatedUnion('kind', [MockSession, ExecSession, StdioSession, HttpSession, ClaudeCodeSession, GeminiCliSession, CodexSession], {
  error: (issue) => issue.code === 'invalid_union'
    ? `unknown session kind (expected one of ${sessionKinds.map((k) => `"${k}"`).join(', ')})` : undefined,
})
export type SessionConfig = z.infer<typeof Session>

const accountId = z.string({ error: 'expected a string' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { error: 'expected 1–64 letters, digits, ".", "_" or "-"' })

export const Account = z.strictObject({
  id: accountId,
  /** the account's own directory; relative paths resolve against the config file; default `<stateRoot>/<id>` */
  stateDir: z.string().min(1).optional(),
  maxConcurrency: positiveInt(4),
  /** share of traffic for round-robin and the random strategies, relative to the other accounts */
  weight: z.number({ error: 'expected a positive number' }).positive({ error: 'expected a positive number' }).default(1),
  session: Session,
  /** models this account serves; the first is its default for requests naming a model nobody declares */
  models: z.array(z.string().min(1)).min(1).optional(),
  /** budgets over rolling windows; the router skips an account that would exceed one (docs/routing.md, "Quotas") */
  quota: z.array(z.strictObject({
    window: z.enum(['1m', '1h', '5h', '24h'], { error: 'expected "1m", "1h", "5h" or "24h"' }),
    requests: z.number().int().positive({ error: 'expected a positive integer' }).optional(),
    tokens: z.number().int().positive({ error: 'expected a positive integer' }).optional(),
  }).refine((r) => r.requests !== undefined || r.tokens !== undefined, { error: 'a budget needs requests or tokens' })).optional(),
  /** names clients use → the model the session really runs (`"claude-sonnet-4-5-thinking": "claude-sonnet-4-5"`) */
  aliases: z.record(z.string().min(1), z.string().min(1)).optional(),
})
export type AccountConfig = z.infer<typeof Account> & {
  stateDir: string
  /** with `confineStateDirs`: the resolved stateRoot, under which the worker creates the directory refusing links */
  confinedTo?: string
}

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
  /** session affinity: a conversation returns to the account that served it (docs/routing.md, "Session affinity") */
  affinity: z.strictObject({
    enabled: z.boolean().default(true),
    maxEntries: positiveInt(100_000),
    ttlMs: positiveInt(3_600_000),
  }).default({ enabled: true, maxEntries: 100_000, ttlMs: 3_600_000 }),
  /** attempts per request, first included; a retry goes to another account and only before any answer byte was sent */
  maxAttempts: positiveInt(2),
  /** failovers allowed over the last 10 s: this share (%) of the requests received then, at least `retryBudgetMin` */
  retryBudgetPercent: nonNegativeInt(20),
  retryBudgetMin: nonNegativeInt(3),
  /** a stream's status line waits this long for the session's first event (so an early failure can fail over) */
  streamHoldMs: positiveInt(1_000),
  /** then keep-alive pings this often until the answer starts */
  pingIntervalMs: positiveInt(10_000),
  /**
   * Lazy workers: an account's worker starts at its first request instead of at start-up, and with `idleMs` > 0 stops
   * again after that long without a request; an idle account then costs no thread (~15 MB and ~60 ms of CPU each).
   * `"auto"` (the default) decides per account by its session kind (dispatch/parking.ts, `startsParked`): parked if it
   * has no child process (`mock`, `http` without `start`): nothing is learned by starting it early, and the thread is
   * its whole cost. Eager if it has one (`exec`, `stdio`, `http` with `start`, the agent CLIs): the child dominates its
   * memory, a CLI that cannot start is found at start-up rather than at the first request, and a long-lived one is
   * warm. `true` and `false` apply to every account; `idleMs` only to the accounts that are lazy. docs/performance.md, "Memory and
   * start-up".
   */
  lazyWorkers: z.strictObject({
    enabled: z.union([z.boolean(), z.literal('auto')], { error: 'expected true, false or "auto"' }).default('auto'),
    idleMs: nonNegativeInt(0),
  }).default({ enabled: 'auto', idleMs: 0 }),
})

export const Log = z.strictObject({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** human-readable lines (pino-pretty); default: JSON */
  pretty: z.boolean().default(false),
})

export const Health = z.strictObject({
  /** how often each worker reports in */
  heartbeatMs: positiveInt(1000),
  /** heartbeats missed before the worker is terminated and replaced (HAProxy `fall 3`) */
  missedHeartbeats: positiveInt(3),
  /** failures in a row that eject an account (Envoy outlier detection) */
  consecutiveFailures: positiveInt(5),
  /** ejection time: base × n (n = times ejected), capped */
  ejectionBaseMs: positiveInt(30_000),
  ejectionMaxMs: positiveInt(300_000),
  /** cooldown after a 429/529 that carried no retry-after */
  defaultCooldownMs: positiveInt(5_000),
  /** cooldowns and ejections; off, every upstream error is passed straight to the client (a single-upstream proxy) */
  outlierDetection: z.boolean().default(true),
})
export type HealthConfig = z.infer<typeof Health>

export const Config = z.strictObject({
  $schema: z.string().optional(),
  server: Server.default(Server.parse({})),
  dispatcher: Dispatcher.default(Dispatcher.parse({})),
  health: Health.default(Health.parse({})),
  log: Log.default(Log.parse({})),
  /** parent of default state directories; relative to the config file */
  stateRoot: z.string().min(1).default('.state'),
  /** every account's stateDir must lie under stateRoot: no `..`, no symbolic link on the way (docs/security.md) */
  confineStateDirs: z.boolean().default(false),
  /** several orchestrators as one fleet on a shared Redis (README, "Running several instances"; docs/fleet.md); absent: one instance */
  cluster: Cluster.optional(),
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
