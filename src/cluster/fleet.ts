/**
 * One node's view of the fleet (issue 17), wired from the `cluster` config: the store, the shared-state modules and
 * the heartbeat that keeps them fresh. Every heartbeat this node rewrites its membership record, re-reads the live
 * nodes and the cooldowns of its credentials: three independent round trips, never two heartbeats at once. When Redis
 * comes back after an outage, one heartbeat runs at once so the node reappears without waiting a period.
 * Only built when the config has a `cluster` section: import this module lazily, so a single instance loads no Redis
 * client at all.
 */
import type { Logger } from 'pino'
import { signRequest, verifyRequest, type SignedRequest, type Verified } from './auth.ts'
import type { ClusterConfig } from './config.ts'
import { Cooldowns } from './cooldowns.ts'
import { Directory } from './directory.ts'
import { credentialId } from './keys.ts'
import { Membership, type AccountRecord } from './membership.ts'
import { FleetQuota } from './quota.ts'
import { Store, type StoreState } from './store.ts'

export interface FleetOptions {
  log?: Logger
  /** this node's accounts as they are now; called once per heartbeat */
  accounts: () => AccountRecord[]
  /** after each heartbeat, done or not (Redis down): apply what was read (src/cluster/node.ts) */
  afterBeat?: () => void
}

export class Fleet {
  readonly nodeId: string
  readonly store: Store
  readonly membership: Membership
  readonly quota: FleetQuota
  readonly cooldowns: Cooldowns
  readonly affinity: Directory
  readonly toolCalls: Directory
  readonly #config: ClusterConfig
  readonly #timer: NodeJS.Timeout
  readonly #afterBeat: (() => void) | undefined
  #beating: Promise<void> | undefined
  #left = false
  /** heartbeats completed, for tests and /metrics */
  heartbeats = 0

  constructor(config: ClusterConfig, options: FleetOptions) {
    this.#config = config
    this.#afterBeat = options.afterBeat
    this.nodeId = config.nodeId
    this.store = new Store({ url: config.redis, keyPrefix: config.keyPrefix, commandTimeoutMs: config.commandTimeoutMs, log: options.log })
    this.membership = new Membership(this.store, config, options.accounts)
    this.quota = new FleetQuota(this.store)
    this.cooldowns = new Cooldowns(this.store, config.nodeId)
    this.affinity = new Directory(this.store, { kind: 'affinity', ttlMs: config.affinityTtlMs, renewOnRead: true })
    this.toolCalls = new Directory(this.store, { kind: 'toolCall', ttlMs: config.toolCallTtlMs, renewOnRead: false })
    this.store.on('state', (state) => { if (state === 'ok') void this.beat() })
    this.#timer = setInterval(() => { void this.beat() }, config.heartbeatMs).unref()
    this.store.start()
  }

  get state(): StoreState { return this.store.state }

  /** One heartbeat; a call while one runs joins it instead of starting another. */
  beat(): Promise<void> {
    if (this.#left) return Promise.resolve()
    this.#beating ??= Promise.all([
      this.membership.beat().then(() => this.membership.list()),
      this.cooldowns.refresh(),
    ]).then(() => { this.heartbeats++ }).finally(() => {
      this.#beating = undefined
      this.#afterBeat?.()
    })
    return this.#beating
  }

  /** The fleet-wide id of an API key or token this node's accounts use (never the key itself). */
  credentialId(apiKey: string): string {
    return credentialId(apiKey, this.#config.secret)
  }

  /** Headers that authenticate a request this node forwards to another. */
  sign(request: SignedRequest): Record<string, string> {
    return signRequest(this.#config.secret, this.nodeId, request)
  }

  /** Whether a request came from a node of this fleet (and so must be served here, never forwarded again). */
  verify(request: SignedRequest, header: (name: string) => string | string[] | null | undefined): Verified {
    return verifyRequest(this.#config.secret, request, header, { maxClockSkewMs: this.#config.maxClockSkewMs })
  }

  /** Stops the heartbeat and leaves the membership at once (best effort): peers stop sending work here (a drain). */
  async leave(): Promise<void> {
    if (this.#left) return
    this.#left = true
    clearInterval(this.#timer)
    await this.#beating
    await this.membership.leave()
  }

  /** Leaves the membership (if not yet), stops the heartbeat and the connection. */
  async close(): Promise<void> {
    await this.leave()
    await this.store.close()
  }
}
