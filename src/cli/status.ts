/**
 * `agyc status [--url URL]`: the accounts of a running orchestrator as a terminal table (GET /admin/accounts);
 * `--cluster`: the fleet it belongs to (GET /admin/cluster): nodes, their accounts, conversations and pending calls.
 */
import type { StatusSnapshot } from '../api/admin.ts'
import type { ClusterStatus } from '../cluster/node.ts'
import { parseCommand } from './args.ts'

export const statusUsage = `usage: agyc status [--url URL] [--key KEY] [--json] [--cluster]

Prints each account of a running orchestrator: state, health, in flight / limit, queue, p50/p99, counts, restarts.
  -u, --url URL   the orchestrator (default: $AGYC_URL, else http://127.0.0.1:8088)
  -k, --key KEY   an admin key (server.auth.adminKeys), when keys are configured (default: $AGYC_ADMIN_KEY;
                  the environment keeps it out of the process list)
      --json      print GET /admin/accounts (or /admin/cluster) as it came
      --cluster   the fleet this orchestrator belongs to: each node, its accounts, who holds which
                  conversations and pending tool calls (GET /admin/cluster)
Exit 1 when the orchestrator cannot be reached or refuses.
`

const ms = (v: number | null): string => (v === null ? '-' : String(Math.round(v)))

function table(header: string[], rows: string[][], left: ReadonlySet<number>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: string[]) => cells.map((c, i) => (left.has(i) ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}

/** `agyc status --cluster`: one row per node, one per account, then who holds what. */
export function formatCluster(status: ClusterStatus): string {
  const held = (listing: ClusterStatus['conversations'], nodeId: string): string =>
    listing === null ? '?' : String(listing.entries.filter((e) => e.nodeId === nodeId).length) + (listing.truncated ? '+' : '')
  const rows = status.nodes.map((n) => {
    const ok = n.accounts.filter((a) => a.state === 'ok').length
    const inFlight = n.accounts.reduce((s, a) => s + a.inFlight, 0)
    const capacity = n.accounts.reduce((s, a) => s + a.capacity, 0)
    return [`${n.nodeId}${n.self ? ' *' : ''}`, n.advertiseUrl, `${ok}/${n.accounts.length}`, `${inFlight}/${capacity}`, String(n.free),
      held(status.conversations, n.nodeId), held(status.toolCalls, n.nodeId)]
  })
  const accounts = status.nodes.flatMap((n) => n.accounts.map((a) => [n.nodeId, a.id, a.state, `${a.inFlight}/${a.capacity}`, a.credential?.slice(0, 8) ?? '-']))
  const degraded = status.state === 'ok' ? '' : ' (Redis unreachable: every node serves from local state; the lists below are the last known)'
  const listed = (what: string, listing: ClusterStatus['conversations']): string => (listing === null ? `${what}: unknown (Redis unreachable)`
    : `${what}: ${listing.entries.length}${listing.truncated ? '+' : ''}${listing.entries.slice(0, 10).map((e) => `\n  ${e.id} → ${e.nodeId}/${e.accountId}`).join('')}`)
  return `cluster: ${status.state}${degraded}, ${status.nodes.length} nodes (* this one: ${status.nodeId})\n\n`
    + `${table(['NODE', 'URL', 'ACCOUNTS OK', 'IN FLIGHT', 'FREE', 'CONVERSATIONS', 'TOOL CALLS'], rows, new Set([0, 1]))}\n\n`
    + `${table(['NODE', 'ACCOUNT', 'STATE', 'IN FLIGHT', 'CREDENTIAL'], accounts, new Set([0, 1, 2, 4]))}\n\n`
    + `${listed('conversations', status.conversations)}\n${listed('pending tool calls', status.toolCalls)}\n`
}

export function formatStatus(snap: StatusSnapshot): string {
  const header = ['ACCOUNT', 'STATE', 'HEALTH', 'IN FLIGHT', 'QUEUE', 'P50 MS', 'P99 MS', 'DONE', 'FAILED', 'RESTARTS', 'LAST ERROR']
  const rows = snap.accounts.map((a) => [
    a.id, `${a.state}${a.parked ? ' (parked)' : ''}${a.retiring ? '*' : ''}`, a.healthScore.toFixed(2), `${a.inFlight}/${a.limit}`, String(a.queued),
    ms(a.p50Ms), ms(a.p99Ms), String(a.completed), String(a.failed), String(a.restarts), (a.lastError ?? '').slice(0, 60),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const left = new Set([0, 1, 10])
  const line = (cells: string[]) => cells.map((c, i) => (left.has(i) ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd()
  const up = snap.accounts.filter((a) => a.state === 'up').length
  const parked = snap.accounts.filter((a) => a.parked).length
  const fleet = snap.cluster ? `cluster: ${snap.cluster.state}${snap.cluster.state === 'ok' ? `, ${snap.cluster.nodes} nodes` : ''} (node ${snap.cluster.nodeId}); ` : ''
  const summary = `${fleet}${up}/${snap.accounts.length} accounts up${parked > 0 ? ` (${parked} parked: no worker until a request comes)` : ''}, ${snap.inFlight} in flight, ${snap.queued} queued`
  const retiring = snap.accounts.some((a) => a.retiring) ? '\n* leaving after a reload (draining, then stopping)' : ''
  return `${summary}\n\n${[line(header), ...rows.map(line)].join('\n')}${retiring}\n`
}

export async function runStatus(argv: string[]): Promise<void> {
  const { values } = parseCommand(argv, { url: { type: 'string', short: 'u' }, key: { type: 'string', short: 'k' }, json: { type: 'boolean' },
    cluster: { type: 'boolean' } }, statusUsage)
  if (values.help) {
    process.stdout.write(statusUsage)
    process.exit(0)
  }
  const base = (values.url ?? process.env.AGYC_URL ?? 'http://127.0.0.1:8088').replace(/\/+$/, '')
  const path = values.cluster ? '/admin/cluster' : '/admin/accounts'
  let res: Response
  try {
    const key = values.key ?? process.env.AGYC_ADMIN_KEY
    res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(5_000), headers: key ? { 'x-api-key': key } : {} })
  } catch (err) {
    process.stderr.write(`cannot reach ${base}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}\n`)
    process.exit(1)
  }
  const text = await res.text()
  if (!res.ok) {
    const hint = res.status === 401 ? ' (pass an admin key: --key KEY or AGYC_ADMIN_KEY)' : ''
    const notFleet = values.cluster && res.status === 404 ? ' (no `cluster` in its config: a single instance)' : ''
    process.stderr.write(`${base}${path} answered ${res.status}${hint}${notFleet}: ${text}\n`)
    process.exit(1)
  }
  if (values.json) process.stdout.write(`${text}\n`)
  else process.stdout.write(values.cluster ? formatCluster(JSON.parse(text) as ClusterStatus) : formatStatus(JSON.parse(text) as StatusSnapshot))
}
