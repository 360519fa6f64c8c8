/**
 * An agent CLI's failure in our codes. The CLIs report an upstream's status when they know it (Claude Code's
 * `api_error_status`, Gemini CLI's JSON-RPC error code, Codex's `httpStatusCode`); otherwise their words decide.
 * A rate limit or exhausted quota carries the time the CLI says it resets, so the account cools down until then
 * (the dispatcher's cooldown, src/health/outlier.ts), and the default cooldown when it says nothing.
 */
import { OrchestratorError, type Code } from '../../../src/errors.ts'
import { codeForStatus } from '../upstream-errors.ts'

const RATE_LIMITED = /\b429\b|rate.?limit|too many requests|resource.?exhausted|quota|usage limit|limit reached/i
const AUTH = /\b401\b|unauthori[sz]ed|unauthenticated|not logged in|please run \/login|log ?in again|invalid (?:api|x-api) key|authentication|oauth token|credentials/i
const FORBIDDEN = /\b403\b|forbidden|permission denied/i
const OVERLOADED = /\b529\b|\b503\b|overloaded|temporarily unavailable/i

export function codeFromText(text: string): Code {
  if (RATE_LIMITED.test(text)) return 'AGYC_UPSTREAM_RATE_LIMITED'
  if (AUTH.test(text)) return 'AGYC_UPSTREAM_AUTH'
  if (FORBIDDEN.test(text)) return 'AGYC_UPSTREAM_FORBIDDEN'
  if (OVERLOADED.test(text)) return 'AGYC_UPSTREAM_OVERLOADED'
  return 'AGYC_UPSTREAM_FAILED'
}

const UNIT_S: Record<string, number> = { ms: 0.001, s: 1, sec: 1, second: 1, seconds: 1, m: 60, min: 60, mins: 60, minute: 60, minutes: 60, h: 3600, hr: 3600, hour: 3600, hours: 3600 }

/**
 * Seconds until the limit resets, as the CLIs word it; undefined when the text names no time. Known forms:
 * "retry after 42s" / "retry in 1.5 minutes" (Gemini CLI), `retryDelay: "42s"` (Google's RetryInfo),
 * "try again in 2h 5m", "resets in 3 hours", "try again at 3:03 PM" / "at Nov 26th, 2026 3:03 PM" (Codex),
 * "resets 3pm" (Claude Code), "limit reached|1767225600" (older Claude Code, epoch seconds).
 */
export function resetFromText(text: string, now = Date.now()): number | undefined {
  let m = /retry(?:\s+after|\s+in|Delay"?\s*[:=]\s*"?)\s*(\d+(?:\.\d+)?)\s*(ms|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)?\b/i.exec(text)
  if (m) return Number(m[1]) * (UNIT_S[(m[2] ?? 's').toLowerCase()] ?? 1)
  m = /(?:resets?|try again)\s+in\s+((?:\d+(?:\.\d+)?\s*(?:ms|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)\b[\s,]*(?:and\s+)?)+)/i.exec(text)
  if (m) {
    let seconds = 0
    for (const [, n, unit] of m[1].matchAll(/(\d+(?:\.\d+)?)\s*(ms|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)\b/gi)) seconds += Number(n) * (UNIT_S[unit.toLowerCase()] ?? 1)
    return seconds
  }
  m = /limit reached\|(\d{9,11})\b/i.exec(text)
  if (m) return Math.max(0, Number(m[1]) - now / 1000)
  m = /(?:try again|resets?)\s+(?:at\s+)?(?:([A-Z][a-z]{2,8}\s+\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4}),?\s+)?(\d{1,2})(?::(\d{2}))?\s*([ap]\.?m\.?)/i.exec(text)
  if (m) {
    let hour = Number(m[3]) % 12
    if (m[5].toLowerCase().startsWith('p')) hour += 12
    const minute = Number(m[4] ?? 0)
    // the child runs with our TZ, so its local time is ours
    const at = m[1] ? new Date(`${m[1]} ${m[2]}`) : new Date(now)
    if (Number.isNaN(at.getTime())) return undefined
    at.setHours(hour, minute, 0, 0)
    if (!m[1] && at.getTime() <= now) at.setDate(at.getDate() + 1)
    return Math.max(0, (at.getTime() - now) / 1000)
  }
  return undefined
}

/** The CLI's failure as ours; `status` is the upstream's HTTP status when the CLI reported one. */
export function cliError(where: string, message: string, status?: number | null): OrchestratorError {
  const code = typeof status === 'number' && status >= 400 ? codeForStatus(status) : codeFromText(message)
  const retryAfterS = code === 'AGYC_UPSTREAM_RATE_LIMITED' || code === 'AGYC_UPSTREAM_OVERLOADED' ? resetFromText(message) : undefined
  const text = message.trim().slice(0, 1_000) || 'failed'
  return new OrchestratorError(code, `${where}: ${text}`, retryAfterS === undefined ? undefined : { retryAfterS })
}
