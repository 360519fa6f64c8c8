/**
 * The secrets this process knows (every value that passed through the config's `Secret`, and tokens registered at run
 * time) and the scrubbing of free text with them. Apart from secret.ts, which holds the zod schema, because errors.ts
 * scrubs with it and account workers import errors.ts: a worker must not load zod for it (~7 MB per worker).
 */
/** Shorter values are not scrubbed from free text: replacing every "abc" would mangle the logs, not protect them. */
const MIN_SCRUBBED = 8
const known = new Set<string>()
let ordered: string[] = []

export function remember(value: string): void {
  if (value.length < MIN_SCRUBBED || known.has(value)) return
  known.add(value)
  // longest first, so that a key which contains another is replaced whole
  ordered = [...known].sort((a, b) => b.length - a.length)
}

/** Registers a secret that did not come through the config (a token read at run time). */
export function rememberSecret(value: string): void {
  remember(value)
}

/** `text` with every known secret replaced by `[redacted]`; the same string when none occurs (the common case). */
export function scrub(text: string): string {
  for (const value of ordered) if (text.includes(value)) text = text.replaceAll(value, '[redacted]')
  return text
}

export function isKnownSecret(value: string): boolean {
  return known.has(value)
}

/**
 * A copy of a config fit to display (`/admin/*`, `agyc validate`, a log line): every string that is a known secret,
 * and every value under a secret-looking key, becomes `[redacted]`. Use it whenever a config leaves the process.
 */
export function redactConfig<T>(config: T): T {
  return redact(config, false) as T
}

const SECRET_KEY = /^(keys|adminkeys|apikey|api_key|token|authtoken|password|secret|authorization|x-api-key|env|headers)$/i

function redact(value: unknown, underSecretKey: boolean): unknown {
  if (typeof value === 'string') return underSecretKey || known.has(value) ? '[redacted]' : scrub(value)
  if (Array.isArray(value)) return value.map((v) => redact(v, underSecretKey))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = redact(v, underSecretKey || SECRET_KEY.test(k))
    return out
  }
  return value
}
