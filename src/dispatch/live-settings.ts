/**
 * What a reload's `dispatcher` section changes while requests run. A plain function of the settings in force and the
 * new ones, so it lives apart from the Dispatcher, which only stores the result and adjusts its queue
 * (`Dispatcher.reconfigure`).
 */
import { isDeepStrictEqual } from 'node:util'
import type { DispatcherConfig } from '../config/schema.ts'

/**
 * `dispatcher` settings a reload applies while requests run: each is read when a request arrives, is queued or
 * fails, so a change reaches the next request (requests already waiting keep the deadlines they were given).
 * The others are built into long-lived parts (the affinity table, the retry budget, the accounts' lazy workers)
 * and take effect at the next start.
 */
const LIVE_SETTINGS = new Set<keyof DispatcherConfig>([
  'strategy', 'globalQueueSize', 'accountQueueSize', 'queueTimeoutMs', 'requestTimeoutMs', 'defaultMaxTokens',
  'strictModels', 'maxAttempts', 'streamHoldMs', 'pingIntervalMs',
])

export interface LiveSettings {
  /** `current` with the live changes of `next` applied */
  config: DispatcherConfig
  /** `dispatcher.<key>` of each change applied now */
  applied: string[]
  /** `dispatcher.<key>` of each change that waits for the next start */
  restartRequired: string[]
}

/** The live settings (LIVE_SETTINGS, and `affinity.enabled`) of `next` over `current`; both lists empty when equal. */
export function applyLiveSettings(current: DispatcherConfig, next: DispatcherConfig): LiveSettings {
  const applied: string[] = []
  const restartRequired: string[] = []
  const config: Record<string, unknown> = { ...current }
  for (const key of Object.keys(next) as (keyof DispatcherConfig)[]) {
    if (isDeepStrictEqual(next[key], current[key])) continue
    if (LIVE_SETTINGS.has(key)) {
      config[key] = next[key]
      applied.push(`dispatcher.${key}`)
    } else if (key === 'affinity') {
      // on or off is read per request; the table's size and TTL are the table's own
      const { enabled, ...table } = next.affinity
      const { enabled: wasEnabled, ...oldTable } = current.affinity
      if (enabled !== wasEnabled) {
        config.affinity = { ...current.affinity, enabled }
        applied.push('dispatcher.affinity.enabled')
      }
      for (const k of Object.keys(table) as (keyof typeof table)[]) {
        if (table[k] !== oldTable[k]) restartRequired.push(`dispatcher.affinity.${k}`)
      }
    } else {
      restartRequired.push(`dispatcher.${key}`)
    }
  }
  return { config: config as DispatcherConfig, applied, restartRequired }
}
