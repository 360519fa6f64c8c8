/**
 * Client and admin keys, compared in constant time. Both sides are hashed first: `timingSafeEqual` throws on a length
 * mismatch, so comparing raw strings would turn a wrong-length key into a 500 and leak the length by the difference.
 */
import { hash, timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'

// one-shot `crypto.hash`: a third of createHash()'s cost per call (no Hash object); ~2 µs per request in all
const digest = (key: string): Buffer => hash('sha256', key, 'buffer')

export class KeyRing {
  readonly #digests: readonly Buffer[]

  constructor(keys: readonly string[]) {
    this.#digests = keys.map(digest)
  }

  get size(): number {
    return this.#digests.length
  }

  has(presented: string | undefined): boolean {
    if (presented === undefined || presented === '') return false
    const d = digest(presented)
    let found = false
    // no early exit: the time taken does not say which key matched, or how many there are before it
    for (const k of this.#digests) found = timingSafeEqual(d, k) || found
    return found
  }
}

/** The key a client presents: `x-api-key` (the SDK, Claude Code with ANTHROPIC_API_KEY) or `Authorization: Bearer`. */
export function presentedKeys(headers: IncomingHttpHeaders, basic: boolean): [string | undefined, string | undefined] {
  const apiKey = headers['x-api-key']
  const authorization = headers.authorization
  let other: string | undefined
  const space0 = authorization?.indexOf(' ') ?? -1
  if (authorization !== undefined && space0 > 0) {
    const space = authorization.indexOf(' ')
    const scheme = authorization.slice(0, space).toLowerCase()
    const value = authorization.slice(space + 1).trim()
    if (scheme === 'bearer') other = value
    else if (basic && scheme === 'basic') {
      // a browser opening the dashboard: the password is the admin key, the user name is ignored
      const decoded = Buffer.from(value, 'base64').toString('utf8')
      other = decoded.slice(decoded.indexOf(':') + 1)
    }
  }
  return [typeof apiKey === 'string' ? apiKey : undefined, other]
}
