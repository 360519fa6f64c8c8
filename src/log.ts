/**
 * pino, configured once. Secrets are redacted by path; client-supplied strings only ever go in fields (JSON-escaped,
 * so a newline in a model name cannot forge a line), never in `msg`.
 */
import { pino, type Logger, type DestinationStream } from 'pino'
import pretty from 'pino-pretty'

export const REDACT_PATHS = [
  'headers.authorization', 'headers["x-api-key"]', 'headers.cookie',
  '*.headers.authorization', '*.headers["x-api-key"]', 'apiKey', '*.apiKey', 'key', '*.key', 'token', '*.token',
]

export function createLogger(options: { level: string; pretty: boolean }, destination?: DestinationStream): Logger {
  const base = { level: options.level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { pid: process.pid } }
  if (destination) return pino(base, destination)
  if (options.pretty) return pino(base, pretty({ sync: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' }))
  return pino(base)
}

export type { Logger }
