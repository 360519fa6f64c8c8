/**
 * Secrets in the config: a literal string or `{"fromEnv": "NAME"}`, resolved when the config is parsed. Every secret
 * that passes through `Secret` is remembered for this process, so that `scrub()` can take it out of any free text (a
 * log line, an error message) even where no redaction path names it: pino's path redaction misses a key quoted inside
 * an error message or a child's stderr (docs/security.md, "Keys").
 */
import { z } from 'zod'
import { remember } from './known-secrets.ts'

export { isKnownSecret, redactConfig, rememberSecret, scrub } from './known-secrets.ts'

/** an environment variable's name: the config names variables for secrets and for children's environments */
export const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'expected an environment variable name' })

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
