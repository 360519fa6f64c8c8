/**
 * The one Redis connection of a node, and the fail-open rule every shared-state module follows (issue 17):
 * Redis is an aid, never a dependency of serving. Each command has a short deadline (`commandTimeoutMs`); when Redis
 * is unreachable, slow or restarting, the store says `degraded` and every operation answers `UNKNOWN` at once, so the
 * caller decides from its local state (local quotas, local cooldowns, its own accounts). The client reconnects by
 * itself (backoff capped at 1 s); a hung server that keeps the socket open is probed with PING. The store says `ok`
 * again as soon as either succeeds.
 *
 * Trade-off: a command that timed out after it was sent may still have run (a quota reservation counted, a cooldown
 * set). That errs on the safe side: a slot counted but never used frees itself when its window passes.
 */
import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { createClient, ErrorReply, type RedisClientType } from 'redis'
import type { Logger } from 'pino'

/** The answer of an operation whose outcome is not known: Redis is degraded, the command timed out or failed. */
export const UNKNOWN: unique symbol = Symbol('agyc.cluster.unknown')
export type Unknown = typeof UNKNOWN

export type StoreState = 'ok' | 'degraded'

export interface StoreOptions {
  url: string
  /** prepended to every key by keys.ts (not by the client: Lua scripts and SCAN patterns then see the same names) */
  keyPrefix: string
  commandTimeoutMs: number
  /** while degraded on a live socket (a hung server), PING this often; default 500 ms */
  probeMs?: number
  log?: Logger
}

/** A Lua script, run by its SHA1 (EVALSHA) and sent whole only when Redis does not know it (after a restart). */
export interface Script { readonly source: string; readonly sha: string }

export function defineScript(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

export type RedisClient = RedisClientType

export class Store extends EventEmitter<{ state: [StoreState] }> {
  readonly prefix: string
  readonly #client: RedisClient
  readonly #log: Logger | undefined
  readonly #probeMs: number
  #state: StoreState = 'degraded' // until the first connection is ready
  #probe: NodeJS.Timeout | undefined
  #closed = false
  /** operations answered UNKNOWN, for /metrics */
  unknowns = 0

  constructor(options: StoreOptions) {
    super()
    this.prefix = options.keyPrefix
    this.#log = options.log
    this.#probeMs = options.probeMs ?? 500
    this.#client = createClient({
      url: options.url,
      // offline: fail at once (ClientOfflineError) instead of queueing commands until Redis returns
      disableOfflineQueue: true,
      socket: {
        connectTimeout: Math.max(1_000, options.commandTimeoutMs),
        // jittered backoff, 50 ms doubling to 1 s: a node notices Redis back within a second, and a fleet restarting
        // together does not reconnect in lockstep
        reconnectStrategy: (retries: number) => Math.round(Math.min(50 * 2 ** retries, 1_000) * (0.75 + Math.random() * 0.5)),
      },
      // rejectInFlight: also time out a command already sent, so a hung server (socket open, no answer) costs one
      // deadline, not forever
      commandOptions: { timeout: options.commandTimeoutMs, rejectInFlight: true },
    })
    this.#client.on('ready', () => this.#set('ok'))
    // 'error' fires on every failed reconnect attempt: one log line per transition, not per attempt
    this.#client.on('error', (err: Error) => this.#set('degraded', err))
    this.#client.on('end', () => this.#set('degraded'))
  }

  get state(): StoreState { return this.#state }

  /** Starts connecting; never throws: with Redis down the store is `degraded` and keeps trying. */
  start(): void {
    this.#client.connect().catch(() => {}) // rejects only when closed before the first connection
  }

  /** Resolves true once the store is `ok`, false after `ms` (start-up may go on degraded). */
  async ready(ms: number): Promise<boolean> {
    if (this.#state === 'ok') return true
    return new Promise((resolve) => {
      const onState = (state: StoreState): void => {
        if (state !== 'ok') return
        clearTimeout(timer)
        resolve(true)
      }
      const timer = setTimeout(() => { this.off('state', onState); resolve(false) }, ms)
      this.on('state', onState)
    })
  }

  /**
   * Runs one operation under the fail-open rule: UNKNOWN at once while degraded, UNKNOWN on a timeout or lost
   * connection (and the store turns degraded). A Redis error reply (a bug in a script, a wrong type) is logged and
   * answered UNKNOWN too: a shared-state bug must not stop the node from serving.
   */
  async run<T>(op: (client: RedisClient) => Promise<T>): Promise<T | Unknown> {
    if (this.#state !== 'ok') {
      this.unknowns++
      return UNKNOWN
    }
    try {
      return await op(this.#client)
    } catch (err) {
      this.unknowns++
      if (err instanceof ErrorReply) this.#log?.error({ err }, 'redis refused a command')
      else this.#set('degraded', err as Error)
      return UNKNOWN
    }
  }

  /** EVALSHA, falling back to EVAL when Redis lost its script cache (a restart, SCRIPT FLUSH). */
  async eval(script: Script, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    return this.run(async (client) => {
      const options = { keys: [...keys], arguments: args.map(String) }
      try {
        return await client.evalSha(script.sha, options)
      } catch (err) {
        if (!(err instanceof ErrorReply && err.message.startsWith('NOSCRIPT'))) throw err
        return client.eval(script.source, options)
      }
    })
  }

  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#probe)
    this.#client.destroy()
  }

  #set(state: StoreState, cause?: Error): void {
    if (this.#closed || state === this.#state) return
    this.#state = state
    if (state === 'degraded') {
      this.#log?.warn({ err: cause }, 'cluster: degraded, serving from local state until Redis answers again')
      // a lost socket comes back through 'ready'; a hung one (SIGSTOP, a blocked server) only a PING can tell
      this.#probe ??= setInterval(() => { void this.#ping() }, this.#probeMs).unref()
    } else {
      this.#log?.info('cluster: ok, shared state resumed')
      clearInterval(this.#probe)
      this.#probe = undefined
    }
    this.emit('state', state)
  }

  async #ping(): Promise<void> {
    if (!this.#client.isReady) return
    try {
      await this.#client.ping()
      this.#set('ok')
    } catch {
      // still hung; the next probe asks again
    }
  }
}
