/**
 * Secrets in the config: a literal string or `{"fromEnv": "NAME"}`, resolved when the config is parsed. Every secret
 * that passes through `Secret` is remembered for this process, so that `scrub()` can take it out of any free text (a
 * log line, an error message) even where no redaction path names it: pino's path redaction misses a key quoted inside
 * an error message or a child's stderr (reliability-defaults.md).
 */
import { z } from 'zod'

/** Shorter values are not scrubbed from free text: replacing every "abc" would mangle the logs, not protect them. */
const MIN_SCRUBBED = 8
const known = new Set<string>()
let ordered: string[] = []

function remember(value: string): void {
  if (value.length < MIN_SCRUBBED || known.has(value)) return
  known.add(value)
  // longest first, so that a key which contains another is replaced whole
  ordered = [...known].sort((a, b) => b.length - a.length)
}

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'expected an environment variable name' })

/**
 * A secret value: `"sk-…"` or `{"fromEnv": "AGYC_KEY"}`. A missing or empty variable is a config error naming the
 * path and the variable, never the value.
 * @example Secret.parse({ fromEnv: 'AGYC_ADMIN_KEY' }) // → the variable's value
 */
export const secret = (minLength = 1) => z.union([
  z.string({ error: 'expected a string or {"fromEnv": "NAME"}' }),
  z.strictObject({ fromEnv: envName }),
], { error: 'expected a string or {"fromEnv": "NAME"}' }).transform((value, ctx) => {
  const text = typeof value === 'string' ? value : process.env[value.fromEnv]
  if (text === undefined || text === '') {
    ctx.addIssue({ code: 'custom', message: typeof value === 'string' ? 'expected a non-empty secret' : `environment variable ${value.fromEnv} is not set` })
    return z.NEVER
  }
  if (text.length < minLength) {
    ctx.addIssue({ code: 'custom', message: `expected at least ${minLength} characters${typeof value === 'string' ? '' : ` in ${value.fromEnv}`}` })
    return z.NEVER
  }
  remember(text)
  return text
})
export const Secret = secret()

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
