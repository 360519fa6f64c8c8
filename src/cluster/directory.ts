/**
 * Where something lives in the fleet (issue 17): a key → {node, account} map in Redis with a TTL per entry. Two of
 * them: the affinity directory (conversation key → its home, renewed on every turn, so a conversation lives
 * `affinityTtlMs` since its last turn) and the pending tool-call directory (`tool_use_id` → the node and account whose
 * session waits for its result, fixed `toolCallTtlMs`). A dead node's entries point at a node no longer in the
 * membership list: the caller treats them as misses and re-homes, and the entries expire by themselves.
 */
import { UNKNOWN, type Store, type Unknown } from './store.ts'
import { keys } from './keys.ts'

export interface Placement { nodeId: string; accountId: string }

export interface DirectoryOptions {
  kind: 'affinity' | 'toolCall'
  ttlMs: number
  /** renew the TTL on every `get` (affinity: "since its last turn") */
  renewOnRead: boolean
}

function parse(raw: unknown): Placement | undefined {
  if (typeof raw !== 'string') return undefined
  try {
    const v = JSON.parse(raw) as Partial<Record<keyof Placement, unknown>>
    return typeof v.nodeId === 'string' && typeof v.accountId === 'string' ? { nodeId: v.nodeId, accountId: v.accountId } : undefined
  } catch {
    return undefined
  }
}

export class Directory {
  readonly #store: Store
  readonly #options: DirectoryOptions
  readonly #key: (p: string, id: string) => string

  constructor(store: Store, options: DirectoryOptions) {
    this.#store = store
    this.#options = options
    this.#key = options.kind === 'affinity' ? keys.affinity : keys.toolCall
  }

  /** The entry's placement; `undefined`: none (or expired). */
  async get(id: string): Promise<Placement | undefined | Unknown> {
    const key = this.#key(this.#store.prefix, id)
    const raw = await this.#store.run((client) => (this.#options.renewOnRead
      ? client.getEx(key, { type: 'PX', value: this.#options.ttlMs })
      : client.get(key)))
    return raw === UNKNOWN ? UNKNOWN : parse(raw)
  }

  async set(id: string, placement: Placement): Promise<void | Unknown> {
    const key = this.#key(this.#store.prefix, id)
    const value = JSON.stringify({ nodeId: placement.nodeId, accountId: placement.accountId })
    const reply = await this.#store.run((client) => client.set(key, value, { expiration: { type: 'PX', value: this.#options.ttlMs } }))
    if (reply === UNKNOWN) return UNKNOWN
  }

  async delete(id: string): Promise<void | Unknown> {
    const reply = await this.#store.run((client) => client.del(this.#key(this.#store.prefix, id)))
    if (reply === UNKNOWN) return UNKNOWN
  }

  /**
   * Up to `limit` entries with their ids, for /admin/cluster ("who holds which conversations"). SCAN: it walks the
   * keyspace in steps without blocking Redis, so it is fine for an operator's page, not for the request path.
   */
  async entries(limit = 1_000): Promise<{ id: string; placement: Placement }[] | Unknown> {
    const start = this.#key(this.#store.prefix, '')
    return this.#store.run(async (client) => {
      const found: { id: string; placement: Placement }[] = []
      for await (const batch of client.scanIterator({ MATCH: `${start}*`, COUNT: 200 })) {
        const names = batch.slice(0, limit - found.length)
        if (names.length === 0) continue
        const values = await client.mGet(names)
        names.forEach((name, i) => {
          const placement = parse(values[i])
          if (placement) found.push({ id: String(name).slice(start.length), placement })
        })
        if (found.length >= limit) break
      }
      return found
    })
  }
}
