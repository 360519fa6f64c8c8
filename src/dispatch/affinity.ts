/**
 * Session affinity: a conversation goes back to the account that served its earlier turns, where its prompt cache
 * lives, while that account is available; otherwise the strategy picks and the new account becomes its home.
 * The key (README, "Session affinity"): the `x-agyc-session` header, else Claude Code's `x-claude-code-session-id`,
 * else `metadata.user_id`, else a hash of the system prompt and the first user turn. Every key is a hash (a kind letter
 * and 27 base64url characters of SHA-1), never the client's string: 300 distinct 1 MB user ids kept raw held ~300 MB
 * (issue 16). Memory is bounded: an LRU of `maxEntries` keys that each live `ttlMs` since their last use, each entry a
 * fixed size (`ENTRY_BYTES` at most, measured in test/affinity.bounds.test.ts), so at most `maxEntries × ENTRY_BYTES`
 * bytes: 100 000 × 256 B ≈ 26 MB with the defaults. SHA-1 is enough: a client that forges a collision only shares a
 * routing preference with itself.
 */
import { hash } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { textEnds, textLength, textOf, type MessagesRequest } from '../protocol/anthropic.ts'

export interface AffinityKey {
  readonly key: string
  /** go home if there is one: the client named its session, or the request continues a conversation */
  readonly follow: boolean
}

/**
 * A first turn continues nothing: it only records its home, so identical one-shot prompts (a benchmark, many users
 * asking the same) are still spread by the strategy instead of piling onto one account.
 */
export function affinityKey(headers: IncomingHttpHeaders, request: MessagesRequest): AffinityKey {
  const explicit = headers['x-agyc-session'] ?? headers['x-claude-code-session-id']
  if (typeof explicit === 'string' && explicit !== '') return { key: fixed('h', explicit), follow: true }
  const userId = (request.metadata as { user_id?: unknown } | undefined)?.user_id
  if (typeof userId === 'string' && userId !== '') return { key: fixed('u', userId), follow: true }
  const messages = request.messages ?? []
  const first = messages.find((m) => m.role === 'user')
  // one string, one-shot hash: the same bytes as three updates, without a Hash object (docs/performance.md, "Figures
  // behind the code")
  return { key: `c:${hash('sha1', `${sample(request.system)}\0${sample(first?.content)}`, 'base64url')}`, follow: messages.length > 1 }
}

/** what of a long text the content key hashes: its two ends and its length (issue 18: not 20 KB a request) */
const SAMPLE_CHARS = 2048

/**
 * The same text gives the same sample turn after turn; two conversations whose system prompt and first user turn
 * agree in length and in their first and last 2 K characters share a key, and so only a routing preference. A long
 * text is sampled without being joined first (anthropic.ts, textEnds: a million blocks took ~150 ms that way).
 */
function sample(content: unknown): string {
  const length = textLength(content)
  if (length <= 2 * SAMPLE_CHARS) return textOf(content)
  const { head, tail } = textEnds(content, SAMPLE_CHARS)
  return `${head}\0${length}\0${tail}`
}

/** the longest key the table holds as given: `affinityKey`'s are 29 characters; anything longer is hashed first */
export const MAX_KEY_LENGTH = 32
/**
 * The most one entry holds, key and bookkeeping (measured: 175–190 B for a 29-character key, 20 000–100 000 keys); the
 * account id is shared with its AccountHandle, not copied.
 */
export const ENTRY_BYTES = 256

// one-shot `crypto.hash`: no Hash object per key
const fixed = (kind: string, value: string): string => `${kind}:${hash('sha1', value, 'base64url')}`

interface Entry { account: string; expires: number }

export class AffinityTable {
  readonly #map = new Map<string, Entry>() // insertion order = recency: the first key is the least recently used
  readonly #max: number
  readonly #ttlMs: number
  readonly #now: () => number
  hits = 0
  misses = 0
  /** a fleet (`cluster`): told where each sticky request went, to keep the shared directory (src/cluster/node.ts) */
  onServed: ((key: string, account: string) => void) | undefined

  constructor(options: { maxEntries: number; ttlMs: number }, now: () => number = Date.now) {
    this.#max = options.maxEntries
    this.#ttlMs = options.ttlMs
    this.#now = now
  }

  get size(): number { return this.#map.size }

  /** What the table may hold at most, in bytes: `maxEntries × ENTRY_BYTES`. */
  get maxBytes(): number { return this.#max * ENTRY_BYTES }

  /** The conversation's home account, if it has a live one. */
  home(rawKey: string): string | undefined {
    const key = bounded(rawKey)
    const entry = this.#map.get(key)
    if (!entry) return undefined
    if (entry.expires <= this.#now()) {
      this.#map.delete(key)
      return undefined
    }
    return entry.account
  }

  /** Records where the conversation went, and makes it the most recently used key; `counted`: a hit or a miss. */
  served(rawKey: string, account: string, hit: boolean, counted: boolean): void {
    const key = bounded(rawKey)
    if (hit) this.hits++
    else if (counted) this.misses++
    this.#map.delete(key)
    this.#map.set(key, { account, expires: this.#now() + this.#ttlMs })
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value as string)
    this.onServed?.(key, account)
  }

  /** A conversation whose account was removed: forget the homes pointing at it. */
  forget(account: string): void {
    for (const [key, entry] of this.#map) if (entry.account === account) this.#map.delete(key)
  }
}

/** A key the table can hold: `affinityKey`'s as they are, any longer one (another caller's) hashed to the same size. */
const bounded = (key: string): string => (key.length <= MAX_KEY_LENGTH ? key : fixed('x', key))
