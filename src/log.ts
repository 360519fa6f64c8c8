/**
 * pino, configured once. Secrets are redacted by path, and every serialized line is scrubbed of the config's known
 * secrets (path redaction misses a key quoted inside an error message or a child's stderr). Client-supplied strings
 * only ever go in fields (JSON-escaped, so a newline in a model name cannot forge a line), never in `msg`.
 */
import { pino, type Logger, type DestinationStream } from 'pino'
import pretty from 'pino-pretty'
import { scrub } from './config/secret.ts'

export const REDACT_PATHS = [
  'headers.authorization', 'headers["x-api-key"]', 'headers.cookie', 'headers["proxy-authorization"]',
  '*.headers.authorization', '*.headers["x-api-key"]', '*.headers.cookie',
  'apiKey', '*.apiKey', 'key', '*.key', 'token', '*.token', 'keys', '*.keys', 'adminKeys', '*.adminKeys',
  'auth', '*.auth', 'env', '*.env',
]

export function createLogger(options: { level: string; pretty: boolean }, destination?: DestinationStream): Logger {
  const base = {
    level: options.level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
    hooks: { streamWrite: scrub },
  }
  if (options.pretty) {
    // pino-pretty prints `msg` raw (fields it JSON-quotes, a stack it indents): a control character there is escaped,
    // in case a message ever carries text we did not write
    return pino(base, pretty({
      sync: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', ...(destination ? { destination } : {}),
      messageFormat: (line, key) => escapeControls(String(line[key] ?? '')),
    }))
  }
  if (destination) return pino(base, destination)
  return pino(base)
}

const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g
const escapeControls = (text: string): string =>
  text.replace(CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)

export type { Logger }
