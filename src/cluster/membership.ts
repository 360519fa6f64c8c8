/**
 * Who is in the fleet (issue 17): each node rewrites its record every heartbeat with a TTL of `nodeTtlMs`; a node
 * that stops (SIGKILL, a partition, a hung loop) drops out when its record expires, with nothing to clean up. A sorted
 * set of node ids scored by expiry (Redis's clock) lists them without SCAN; expired ids are pruned on read.
 * The last list is kept (`nodes()`), so placement decisions ("which node has the most free capacity") cost no round
 * trip; it is as fresh as the last heartbeat.
 */
import { z } from 'zod'
import { defineScript, UNKNOWN, type Store, type Unknown } from './store.ts'
import { keys } from './keys.ts'

const AccountRecord = z.object({
  id: z.string(),
  /** the account's state as the dispatcher sees it (`ok`, `cooling`, `ejected`, `parked`, `draining`, …) */
  state: z.string(),
  /** requests it may run at once (maxConcurrency) */
  capacity: z.number(),
  inFlight: z.number(),
  /** the credential id it spends (keys.ts `credentialId`), when it has a shared one */
  credential: z.string().optional(),
  models: z.array(z.string()).optional(),
})
export type AccountRecord = z.infer<typeof AccountRecord>

const NodeRecord = z.object({
  nodeId: z.string(),
  advertiseUrl: z.string(),
  /** the node's own clock, ms: a restarted node has a new one */
  startedAt: z.number(),
  accounts: z.array(AccountRecord),
})
export type NodeRecord = z.infer<typeof NodeRecord>

export interface NodeView extends NodeRecord {
  /** ms until the record expires unless refreshed (Redis's clock); a healthy node stays near nodeTtlMs */
  expiresInMs: number
  /** Σ capacity − in-flight over its accounts that are `ok` */
  free: number
}

// KEYS: the record, the set. ARGV: nodeId, record JSON, ttl ms.
const BEAT = defineScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
`)

// KEYS: the set. Returns id, ms left for each live node.
const LIVE = defineScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local flat = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for j = 2, #flat, 2 do flat[j] = tonumber(flat[j]) - now end
return flat
`)

export interface MembershipOptions { nodeId: string; advertiseUrl: string; nodeTtlMs: number }

export class Membership {
  readonly #store: Store
  readonly #options: MembershipOptions
  readonly #snapshot: () => AccountRecord[]
  readonly #startedAt = Date.now()
  #nodes: readonly NodeView[] = []
  /** records that did not parse: a node on another version, or a stray key */
  malformed = 0

  /** `snapshot` is called once per heartbeat: this node's accounts as they are now. */
  constructor(store: Store, options: MembershipOptions, snapshot: () => AccountRecord[]) {
    this.#store = store
    this.#options = options
    this.#snapshot = snapshot
  }

  /** Writes this node's record (one heartbeat). */
  async beat(): Promise<void | Unknown> {
    const { nodeId, advertiseUrl, nodeTtlMs } = this.#options
    const record: NodeRecord = { nodeId, advertiseUrl, startedAt: this.#startedAt, accounts: this.#snapshot() }
    const p = this.#store.prefix
    const reply = await this.#store.eval(BEAT, [keys.node(p, nodeId), keys.nodes(p)], [nodeId, JSON.stringify(record), nodeTtlMs])
    if (reply === UNKNOWN) return UNKNOWN
  }

  /** The live nodes, this one included, read from Redis; also kept for `nodes()`. */
  async list(): Promise<readonly NodeView[] | Unknown> {
    const p = this.#store.prefix
    const live = await this.#store.eval(LIVE, [keys.nodes(p)], [])
    if (live === UNKNOWN) return UNKNOWN
    const flat = live as (string | number)[]
    const ids: string[] = []
    const left = new Map<string, number>()
    for (let j = 0; j < flat.length; j += 2) {
      ids.push(String(flat[j]))
      left.set(String(flat[j]), Number(flat[j + 1]))
    }
    if (ids.length === 0) return this.#nodes = []
    const records = await this.#store.run((client) => client.mGet(ids.map((id) => keys.node(p, id))))
    if (records === UNKNOWN) return UNKNOWN
    const nodes: NodeView[] = []
    for (const raw of records) {
      if (raw === null) continue // expired between the two reads
      const parsed = parseRecord(raw)
      if (parsed === undefined) { this.malformed++; continue }
      nodes.push({ ...parsed, expiresInMs: left.get(parsed.nodeId) ?? 0, free: freeOf(parsed) })
    }
    return this.#nodes = nodes
  }

  /** The last list read (empty before the first, or while degraded since start-up). */
  nodes(): readonly NodeView[] {
    return this.#nodes
  }

  /** Leaves at once (a drain), instead of waiting for the record to expire. */
  async leave(): Promise<void | Unknown> {
    const p = this.#store.prefix
    const { nodeId } = this.#options
    const reply = await this.#store.run((client) => client.multi().del(keys.node(p, nodeId)).zRem(keys.nodes(p), nodeId).exec())
    if (reply === UNKNOWN) return UNKNOWN
  }
}

function parseRecord(raw: unknown): NodeRecord | undefined {
  if (typeof raw !== 'string') return undefined
  try {
    const parsed = NodeRecord.safeParse(JSON.parse(raw))
    return parsed.success ? parsed.data : undefined
  } catch {
    return undefined
  }
}

function freeOf(node: NodeRecord): number {
  let free = 0
  for (const a of node.accounts) if (a.state === 'ok') free += Math.max(0, a.capacity - a.inFlight)
  return free
}
