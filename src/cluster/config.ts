/**
 * The `cluster` section of the config (issue 17): several orchestrators sharing quotas, cooldowns, the affinity and
 * tool-call directories and their membership in one Redis. Absent: the embedded default, nothing extra runs.
 * Every TTL is there so that a dead node's entries expire by themselves; nothing needs cleaning up after a SIGKILL.
 */
import { z } from 'zod'
import { envName, secret } from '../config/secret.ts'

const positiveInt = (fallback: number) =>
  z.number({ error: 'expected a positive integer' }).int({ error: 'expected a positive integer' })
    .positive({ error: 'expected a positive integer' }).default(fallback)

/** `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS); the whole URL is scrubbed from logs like a secret */
const RedisUrl = secret().pipe(z.string().refine((text) => {
  try {
    return ['redis:', 'rediss:'].includes(new URL(text).protocol)
  } catch {
    return false
  }
}, { error: 'expected a URL like "redis://127.0.0.1:6379"' }))

/**
 * The cluster secret signs forwarded requests between nodes. Only ever named, never written in the file (which is
 * shared and committed): `{"fromEnv": "AGYC_CLUSTER_SECRET"}`, at least 32 characters.
 */
const ClusterSecret = z.strictObject({ fromEnv: envName }, {
  error: (issue) => (issue.code === 'invalid_type'
    ? 'expected {"fromEnv": "NAME"}: put the cluster secret in an environment variable and name it here'
    : undefined),
}).transform((named, ctx) => {
  // the shared `secret()` resolves the variable, checks its length and remembers the value for log scrubbing
  const resolved = secret(32).safeParse(named)
  if (resolved.success) return resolved.data
  for (const issue of resolved.error.issues) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message })
  return z.NEVER
})

export const Cluster = z.strictObject({
  /** where the shared state lives; a string or `{"fromEnv": "AGYC_REDIS_URL"}` (it may carry a password) */
  redis: RedisUrl,
  /** this node's name in the fleet: unique, stable across restarts (its conversations find it again) */
  nodeId: z.string({ error: 'expected a string' })
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { error: 'expected 1–64 letters, digits, ".", "_" or "-"' }),
  /** how the other nodes reach this one, for forwarded requests: `http://10.0.0.5:8088` */
  advertiseUrl: z.string().regex(/^https?:\/\/[^/?#\s]+\/?$/, { error: 'expected an origin like "http://10.0.0.5:8088"' })
    .transform((u) => u.replace(/\/$/, '')),
  secret: ClusterSecret,
  /** prepended to every key; two fleets can share one Redis with different prefixes */
  keyPrefix: z.string().regex(/^[A-Za-z0-9._:-]{0,64}$/, { error: 'expected up to 64 letters, digits, ".", "_", ":" or "-"' })
    .default('agyc:'),
  /** this node's membership record is rewritten this often, and the shared cooldowns re-read */
  heartbeatMs: positiveInt(1_000),
  /** a node whose record was not refreshed for this long is gone: its record expires */
  nodeTtlMs: positiveInt(5_000),
  /** a conversation's home (node and account) lives this long since its last turn */
  affinityTtlMs: positiveInt(3_600_000),
  /** a pending tool call waits this long for the client's tool_result */
  toolCallTtlMs: positiveInt(600_000),
  /** longest wait for any Redis command; past it the answer is "unknown" and the node decides from local state */
  commandTimeoutMs: positiveInt(250),
  /** a forwarded request's signature is refused when its timestamp is further than this from our clock */
  maxClockSkewMs: positiveInt(30_000),
}).superRefine((cluster, ctx) => {
  // two missed heartbeats are not yet a death: a busy event loop or one lost write must not evict a live node
  if (cluster.nodeTtlMs < 2 * cluster.heartbeatMs) {
    ctx.addIssue({ code: 'custom', path: ['nodeTtlMs'], message: 'expected at least 2 × heartbeatMs' })
  }
})

export type ClusterConfig = z.infer<typeof Cluster>
