/**
 * Cooldowns and ejections per credential, shared by the fleet (issue 17): a 429 one node sees cools that credential
 * on every node. Written with a TTL equal to the upstream's retry-after (or the ejection time), so it ends by itself.
 *
 * Read path, chosen for cost: the dispatcher asks `until(credential)` on every placement, so it must be a map lookup,
 * never a Redis round trip. Each node keeps a local copy of the credentials it uses (`track`), refreshed once per
 * heartbeat with one script call (GET + PTTL of each). A cooldown set elsewhere is therefore seen within one
 * heartbeat; one set here is seen here at once. Pub/Sub would shave that heartbeat but needs a second connection
 * and still a periodic re-read for a node that reconnects after missing a message; the heartbeat read alone is simpler
 * and bounded. Remaining times come from Redis's PTTL, not from a timestamp, so clocks need not agree.
 * Degraded: `set` answers UNKNOWN (the caller's local outlier state still applies) and the copy keeps what it had
 * until each entry's own end.
 */
import { defineScript, UNKNOWN, type Store, type Unknown } from './store.ts'
import { keys } from './keys.ts'

export type CooldownKind = 'cooldown' | 'ejected'

export interface SharedCooldown {
  readonly kind: CooldownKind
  /** local clock, ms */
  readonly until: number
  readonly reason: string
  /** the node that set it */
  readonly by: string
}

// An existing longer entry wins: a short retry-after must not cut short an ejection another node just set.
// KEYS[1] the entry; ARGV: ms, value. Returns the entry's remaining ms.
const SET = defineScript(`
local ttl = redis.call('PTTL', KEYS[1])
local ms = tonumber(ARGV[1])
if ttl >= ms then return ttl end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ms)
return ms
`)

// KEYS: one entry per credential. Returns value, remaining ms for each (false, -2 when absent).
const READ = defineScript(`
local out = {}
for i = 1, #KEYS do
  out[2 * i - 1] = redis.call('GET', KEYS[i])
  out[2 * i] = redis.call('PTTL', KEYS[i])
end
return out
`)

function parse(value: unknown, until: number): SharedCooldown | undefined {
  if (typeof value !== 'string') return undefined
  try {
    const v = JSON.parse(value) as { kind?: unknown; reason?: unknown; by?: unknown }
    const kind = v.kind === 'ejected' ? 'ejected' : 'cooldown'
    return { kind, until, reason: typeof v.reason === 'string' ? v.reason : '', by: typeof v.by === 'string' ? v.by : '' }
  } catch {
    return undefined
  }
}

export class Cooldowns {
  readonly #store: Store
  readonly #nodeId: string
  readonly #now: () => number
  readonly #tracked = new Set<string>()
  readonly #known = new Map<string, SharedCooldown>()

  constructor(store: Store, nodeId: string, now: () => number = Date.now) {
    this.#store = store
    this.#nodeId = nodeId
    this.#now = now
  }

  /** The credentials this node's accounts use: the ones `refresh` reads. */
  track(credentials: Iterable<string>): void {
    this.#tracked.clear()
    for (const c of credentials) this.#tracked.add(c)
    for (const c of this.#known.keys()) if (!this.#tracked.has(c)) this.#known.delete(c)
  }

  /** When the credential may be used again, by the local copy (0: now). A map lookup: for the hot path. */
  until(credential: string): number {
    const entry = this.#known.get(credential)
    if (entry === undefined) return 0
    if (entry.until > this.#now()) return entry.until
    this.#known.delete(credential)
    return 0
  }

  get(credential: string): SharedCooldown | undefined {
    return this.until(credential) === 0 ? undefined : this.#known.get(credential)
  }

  /** Cools (or ejects) the credential on every node for `ms`; a longer entry already there is kept. */
  async set(credential: string, ms: number, kind: CooldownKind = 'cooldown', reason = ''): Promise<void | Unknown> {
    ms = Math.max(1, Math.round(ms))
    const value = JSON.stringify({ kind, reason, by: this.#nodeId })
    const mine = { kind, until: this.#now() + ms, reason, by: this.#nodeId }
    const seen = this.#known.get(credential)
    if (seen === undefined || seen.until < mine.until) this.#known.set(credential, mine)
    const reply = await this.#store.eval(SET, [keys.cooldown(this.#store.prefix, credential)], [ms, value])
    if (reply === UNKNOWN) return UNKNOWN
  }

  /** Ends the credential's entry everywhere (a probe succeeded after an ejection). */
  async clear(credential: string): Promise<void | Unknown> {
    this.#known.delete(credential)
    const reply = await this.#store.run((client) => client.del(keys.cooldown(this.#store.prefix, credential)))
    if (reply === UNKNOWN) return UNKNOWN
  }

  /** Re-reads every tracked credential in one call; run once per heartbeat. */
  async refresh(): Promise<void | Unknown> {
    const tracked = [...this.#tracked]
    if (tracked.length === 0) return
    const reply = await this.#store.eval(READ, tracked.map((c) => keys.cooldown(this.#store.prefix, c)), [])
    if (reply === UNKNOWN) return UNKNOWN
    const flat = reply as unknown[]
    const now = this.#now()
    tracked.forEach((credential, i) => {
      const ttl = Number(flat[2 * i + 1])
      const entry = ttl > 0 ? parse(flat[2 * i], now + ttl) : undefined
      if (entry) this.#known.set(credential, entry)
      else this.#known.delete(credential)
    })
  }
}
