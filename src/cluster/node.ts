/**
 * This orchestrator as a node of a fleet (issue 17): everything `cluster` adds, built in one place and imported lazily
 * by src/orchestrator.ts, so a single instance loads no Redis client, registers no cluster metric and runs no timer.
 * - the Fleet (fleet.ts): the Redis store, membership, quotas, cooldowns, directories, heartbeat;
 * - each account's shared half (accounts.ts), handed to the dispatcher as a factory;
 * - the affinity directory kept from the dispatcher's placements (AffinityTable.onServed);
 * - the router and its forwarder (route.ts, forward.ts), the front doors' hook;
 * - /admin/cluster's view (status below), the dashboard's summary and the metrics (metrics.ts).
 */
import type { Logger } from 'pino'
import type { Dispatcher } from '../dispatch/dispatcher.ts'
import type { SharedAccountFactory } from '../dispatch/shared.ts'
import { FleetAccounts } from './accounts.ts'
import type { ClusterConfig } from './config.ts'
import type { Placement } from './directory.ts'
import { Fleet } from './fleet.ts'
import { Forwarder } from './forward.ts'
import type { AccountRecord } from './membership.ts'
import { meter } from './metrics.ts'
import { Router, type ClusterRoute } from './route.ts'
import { UNKNOWN, type StoreState } from './store.ts'

export interface ClusterSummary { nodeId: string; state: StoreState; nodes: number }

export interface DirectoryListing {
  entries: { id: string; nodeId: string; accountId: string }[]
  /** more entries exist than were listed */
  truncated: boolean
}

export interface ClusterStatus {
  nodeId: string
  state: StoreState
  heartbeats: number
  /** shared-state operations answered "unknown" since start (Redis down or slow) */
  redisUnknowns: number
  nodes: {
    nodeId: string
    advertiseUrl: string
    startedAt: number
    expiresInMs: number
    free: number
    self: boolean
    accounts: AccountRecord[]
  }[]
  /** conversation key → its home; null while Redis does not answer */
  conversations: DirectoryListing | null
  /** pending tool_use_id → the node (and account) whose session waits for its result; null while Redis does not answer */
  toolCalls: DirectoryListing | null
  forwarded: { reason: string; outcome: string; count: number }[]
  received: number
  refused: number
}

/** What the HTTP side reads of the node (AppDeps.cluster): the front doors' router, /admin/cluster, the dashboard. */
export interface ClusterDeps {
  readonly route: ClusterRoute
  status(limit: number): Promise<ClusterStatus>
  summary(): ClusterSummary
}

export class ClusterNode {
  readonly fleet: Fleet
  readonly #accounts: FleetAccounts
  readonly #forwarder = new Forwarder()
  readonly #log: Logger
  #router: Router | undefined
  #unmeter: (() => void) | undefined

  constructor(config: ClusterConfig, log: Logger) {
    this.#log = log
    let accounts: FleetAccounts | undefined
    this.fleet = new Fleet(config, {
      log,
      accounts: () => accounts?.records() ?? [],
      afterBeat: () => {
        accounts?.afterBeat()
        this.#router?.onBeat()
      },
    })
    this.#accounts = accounts = new FleetAccounts(this.fleet)
  }

  /** For the dispatcher's accounts (DispatcherOptions.shared). */
  get sharedFor(): SharedAccountFactory {
    return this.#accounts.factory
  }

  /** The dispatcher exists: its accounts go into the membership record, its placements into the directory. */
  bind(dispatcher: Dispatcher): ClusterRoute {
    this.#accounts.bind(dispatcher.accounts)
    const self = this.fleet.nodeId
    dispatcher.affinity.onServed = (key, accountId) => {
      // not awaited: the placement is made; a lost write only costs the next turn elsewhere a cold cache
      void this.fleet.affinity.set(key, { nodeId: self, accountId })
    }
    // the tool bridge's pending calls, so a continuation landing on another node comes here, where the CLI waits
    dispatcher.toolCalls.onChange = (ids, account) => {
      for (const id of ids) {
        void (account === undefined ? this.fleet.toolCalls.delete(id) : this.fleet.toolCalls.set(id, { nodeId: self, accountId: account.id }))
      }
    }
    this.#router = new Router(this.fleet, dispatcher, this.#forwarder, this.#log)
    this.#unmeter = meter({ fleet: this.fleet, stats: this.#router.stats })
    return this.#router
  }

  summary(): ClusterSummary {
    return { nodeId: this.fleet.nodeId, state: this.fleet.state, nodes: this.fleet.membership.nodes().length }
  }

  /** /admin/cluster: the nodes, their accounts, and up to `limit` conversations and pending tool calls. */
  async status(limit: number): Promise<ClusterStatus> {
    const fleet = this.fleet
    const listed = await fleet.membership.list()
    const nodes = listed === UNKNOWN ? fleet.membership.nodes() : listed
    const [conversations, toolCalls] = await Promise.all([listing(fleet.affinity.entries(limit + 1), limit), listing(fleet.toolCalls.entries(limit + 1), limit)])
    const stats = this.#router?.stats
    return {
      nodeId: fleet.nodeId,
      state: fleet.state,
      heartbeats: fleet.heartbeats,
      redisUnknowns: fleet.store.unknowns,
      nodes: nodes.map((n) => ({ nodeId: n.nodeId, advertiseUrl: n.advertiseUrl, startedAt: n.startedAt, expiresInMs: n.expiresInMs, free: n.free,
        self: n.nodeId === fleet.nodeId, accounts: n.accounts })),
      conversations,
      toolCalls,
      forwarded: [...(stats?.forwarded ?? [])].map(([key, count]) => {
        const [reason, outcome] = key.split('\0')
        return { reason, outcome, count }
      }),
      received: stats?.received ?? 0,
      refused: stats?.refused ?? 0,
    }
  }

  /** Draining: out of the membership now, so peers stop sending work here; the connection stays for what runs. */
  leave(): Promise<void> {
    return this.fleet.leave()
  }

  async close(): Promise<void> {
    this.#unmeter?.()
    await this.fleet.close()
    await this.#forwarder.close()
  }
}

async function listing(entries: Promise<{ id: string; placement: Placement }[] | typeof UNKNOWN>, limit: number): Promise<DirectoryListing | null> {
  const found = await entries
  if (found === UNKNOWN) return null
  return {
    entries: found.slice(0, limit).map((e) => ({ id: e.id, nodeId: e.placement.nodeId, accountId: e.placement.accountId })),
    truncated: found.length > limit,
  }
}
