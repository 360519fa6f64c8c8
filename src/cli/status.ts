/** `agyc status [--url URL]`: the accounts of a running orchestrator as a terminal table (GET /admin/accounts). */
import type { StatusSnapshot } from '../api/admin.ts'
import { parseCommand } from './args.ts'

export const statusUsage = `usage: agyc status [--url URL] [--key KEY] [--json]

Prints each account of a running orchestrator: state, health, in flight / limit, queue, p50/p99, counts, restarts.
  -u, --url URL   the orchestrator (default: $AGYC_URL, else http://127.0.0.1:8088)
  -k, --key KEY   an admin key (server.auth.adminKeys), when keys are configured (default: $AGYC_ADMIN_KEY;
                  the environment keeps it out of the process list)
      --json      print GET /admin/accounts as it came
Exit 1 when the orchestrator cannot be reached or refuses.
`

const ms = (v: number | null): string => (v === null ? '-' : String(Math.round(v)))

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
  const summary = `${up}/${snap.accounts.length} accounts up${parked > 0 ? ` (${parked} parked: no worker until a request comes)` : ''}, ${snap.inFlight} in flight, ${snap.queued} queued`
  const retiring = snap.accounts.some((a) => a.retiring) ? '\n* leaving after a reload (draining, then stopping)' : ''
  return `${summary}\n\n${[line(header), ...rows.map(line)].join('\n')}${retiring}\n`
}

export async function runStatus(argv: string[]): Promise<void> {
  const { values } = parseCommand(argv, { url: { type: 'string', short: 'u' }, key: { type: 'string', short: 'k' }, json: { type: 'boolean' } }, statusUsage)
  if (values.help) {
    process.stdout.write(statusUsage)
    process.exit(0)
  }
  const base = (values.url ?? process.env.AGYC_URL ?? 'http://127.0.0.1:8088').replace(/\/+$/, '')
  let res: Response
  try {
    const key = values.key ?? process.env.AGYC_ADMIN_KEY
    res = await fetch(`${base}/admin/accounts`, { signal: AbortSignal.timeout(5_000), headers: key ? { 'x-api-key': key } : {} })
  } catch (err) {
    process.stderr.write(`cannot reach ${base}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}\n`)
    process.exit(1)
  }
  const text = await res.text()
  if (!res.ok) {
    const hint = res.status === 401 ? ' (pass an admin key: --key KEY or AGYC_ADMIN_KEY)' : ''
    process.stderr.write(`${base}/admin/accounts answered ${res.status}${hint}: ${text}\n`)
    process.exit(1)
  }
  process.stdout.write(values.json ? `${text}\n` : formatStatus(JSON.parse(text) as StatusSnapshot))
}
