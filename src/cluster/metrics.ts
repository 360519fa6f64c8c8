/**
 * The fleet's metrics (issue 17), registered in the orchestrator's registry when this module loads, which happens only
 * when `cluster` is configured (node.ts is imported lazily): a single instance's /metrics has none of them. As in
 * src/metrics.ts, values are read at scrape time from the nodes registered here, never pushed on the hot path.
 */
import { Counter, Gauge } from 'prom-client'
import { registry } from '../metrics.ts'
import type { Fleet } from './fleet.ts'
import type { RouterStats } from './route.ts'

export interface MeteredNode {
  readonly fleet: Fleet
  readonly stats: RouterStats
}

const nodes = new Set<MeteredNode>()

export function meter(node: MeteredNode): () => void {
  nodes.add(node)
  return () => { nodes.delete(node) }
}

const gauge = (name: string, help: string, labelNames: string[], collect: (g: Gauge<string>) => void): void => {
  new Gauge({ name, help, labelNames, registers: [registry], collect() { this.reset(); collect(this) } })
}
const counter = (name: string, help: string, labelNames: string[], collect: (c: Counter<string>) => void): void => {
  new Counter({ name, help, labelNames, registers: [registry], collect() { this.reset(); collect(this) } })
}

gauge('agyc_cluster_state', 'Shared state on Redis: 1 ok, 0 degraded (Redis unreachable: serving from local state)', [], (g) => {
  for (const n of nodes) g.set(n.fleet.state === 'ok' ? 1 : 0)
})
gauge('agyc_cluster_nodes', 'Live nodes in the fleet, as of the last heartbeat that reached Redis', [], (g) => {
  for (const n of nodes) g.set(n.fleet.membership.nodes().length)
})
gauge('agyc_cluster_node_free', 'Free request slots of each live node (capacity − in flight over its accounts that are ok)', ['node'], (g) => {
  for (const n of nodes) for (const v of n.fleet.membership.nodes()) g.set({ node: v.nodeId }, v.free)
})
gauge('agyc_cluster_node_in_flight', 'Requests in flight on each live node, as it last reported', ['node'], (g) => {
  for (const n of nodes) for (const v of n.fleet.membership.nodes()) g.set({ node: v.nodeId }, v.accounts.reduce((s, a) => s + a.inFlight, 0))
})
gauge('agyc_cluster_node_capacity', 'Request slots of each live node (Σ maxConcurrency of its accounts)', ['node'], (g) => {
  for (const n of nodes) for (const v of n.fleet.membership.nodes()) g.set({ node: v.nodeId }, v.accounts.reduce((s, a) => s + a.capacity, 0))
})
counter('agyc_cluster_heartbeats_total', 'Fleet heartbeats of this node (membership written, nodes and cooldowns read)', [], (c) => {
  for (const n of nodes) c.inc(n.fleet.heartbeats)
})
counter('agyc_cluster_redis_unknown_total', 'Shared-state operations answered "unknown" (Redis down, slow or refusing): decided locally', [], (c) => {
  for (const n of nodes) c.inc(n.fleet.store.unknowns)
})
counter('agyc_cluster_forwarded_total', 'Requests this node forwarded, by reason (tool-call, affinity, capacity) and outcome', ['reason', 'outcome'], (c) => {
  for (const n of nodes) {
    for (const [key, count] of n.stats.forwarded) {
      const [reason, outcome] = key.split('\0')
      c.inc({ reason, outcome }, count)
    }
  }
})
counter('agyc_cluster_received_total', 'Requests another node forwarded here, by result (served here, or refused: no valid signature)', ['result'], (c) => {
  for (const n of nodes) {
    c.inc({ result: 'served' }, n.stats.received)
    c.inc({ result: 'refused' }, n.stats.refused)
  }
})
