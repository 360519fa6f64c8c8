/**
 * Fleet bench rows (issue 17): throughput through nginx (docs/nginx.conf as shipped, ports changed) in front of 1, 2
 * and 3 orchestrator processes on one redis-server, and the cost of one forwarding hop (a conversation homed on n2,
 * asked on n1: the affinity lookup in Redis plus the HTTP hop, against asking n2 directly). Mock accounts, loopback
 * only; prints a markdown table. Not part of `npm run bench` (bench/run.ts): run it alone.
 *
 *   node bench/fleet.ts [--duration S] [--connections N]
 *
 * Every process shares the machine's cores (nothing is pinned): on a small shared machine the rows are indicative, and
 * more nodes on the same cores measure the fleet's overhead, not its scaling.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type { TestContext } from 'node:test'
import { mockAccountsOf, startFleetNginx, startNode, untilMembers, type FleetNode } from '../test/helpers/fleet.ts'
import { startRedis } from '../test/helpers/servers.ts'

const AUTOCANNON = fileURLToPath(new URL('../node_modules/autocannon/autocannon.js', import.meta.url))

const { values } = parseArgs({ options: { duration: { type: 'string', default: '3' }, connections: { type: 'string', default: '32' } } })
const durationS = Math.max(1, Number(values.duration))
const connections = Math.max(1, Number(values.connections))

interface Row { what: string; connections: number; rps: number; p50: number; p99: number; mean: number; errors: number }

/** autocannon's own CLI in a child process (its --json summary): the load generator is not this process. */
function load(what: string, url: string, c: number, headers: Record<string, string> = {}): Promise<Row> {
  const body = JSON.stringify({ model: 'claude-test-1', max_tokens: 32, messages: [{ role: 'user', content: 'bench' }] })
  const args = [AUTOCANNON, '--json', '-c', String(c), '-d', String(durationS), '-m', 'POST', '-t', '10', '-H', 'content-type=application/json']
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}=${v}`)
  args.push('-b', body, `${url}/v1/messages`)
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d })
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`autocannon exited ${code}`))
      const r = JSON.parse(out) as { requests: { average: number }; latency: { p50: number; p99: number; mean: number }; errors: number; non2xx: number
        statusCodeStats?: Record<string, { count: number }> }
      if (r.errors + r.non2xx > 0) process.stderr.write(`${what}: ${r.errors} errors, statuses ${JSON.stringify(r.statusCodeStats)}\n`)
      // mean latency from Little's law (connections ÷ throughput): autocannon's own mean counts whole milliseconds
      const rps = r.requests.average
      resolve({ what, connections: c, rps, p50: r.latency.p50, p99: r.latency.p99, mean: rps > 0 ? (1000 * c) / rps : 0, errors: r.errors + r.non2xx })
    })
  })
}

// test/helpers/fleet.ts registers its clean-ups with a test's `t.after`: here they run in reverse at the end
const cleanups: (() => unknown)[] = []
const t = { after: (fn: () => unknown) => { cleanups.push(fn) } } as unknown as TestContext
async function cleanUp(): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) await fn()
}

async function fleetOf(n: number, redisUrl: string, keyPrefix: string): Promise<FleetNode[]> {
  const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`)
  const nodes = await Promise.all(ids.map((nodeId) => startNode(t, {
    nodeId, redis: redisUrl, keyPrefix, accounts: mockAccountsOf(nodeId, 4, {}, { maxConcurrency: 8 }),
    dispatcher: { lazyWorkers: { enabled: false } },
  })))
  await untilMembers(nodes, n)
  return nodes
}

const rows: Row[] = []
const redis = await startRedis()
try {
  for (const n of [1, 2, 3]) {
    const nodes = await fleetOf(n, redis.url, `bench${n}:`)
    const nginx = await startFleetNginx(t, nodes.map((x) => x.port))
    await load('warm-up', nginx.url, connections) // workers and connection pools warm
    rows.push(await load(`nginx → ${n} node${n > 1 ? 's' : ''}`, nginx.url, connections))
    if (n === 2) {
      // one conversation, homed on n2 (its first turn there), asked on n1 every time: each request is a hop
      const headers = { 'x-claude-code-session-id': 'bench-hop' }
      await fetch(`${nodes[1].url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ model: 'claude-test-1', max_tokens: 8, messages: [{ role: 'user', content: 'home' }] }) }).then((r) => r.text())
      for (const c of [1, connections]) {
        rows.push(await load('n2 directly (its home)', nodes[1].url, c, headers))
        const hop = await load('n1, forwarded to n2 (one hop)', nodes[0].url, c, headers)
        rows.push(hop)
        if (hop.errors > 0) {
          const tail = nodes[0].output().split('\n').filter((l) => !l.includes('"msg":"request')).slice(-12).join('\n')
          process.stderr.write(`n1 exit ${nodes[0].child.exitCode} ${nodes[0].child.signalCode}:\n${tail.slice(-4000)}\n`)
        }
      }
    }
    await cleanUp()
  }
} finally {
  await cleanUp()
  await redis.stop()
}

const fmt = (v: number, d = 1): string => v.toFixed(d)
process.stdout.write(`\nFleet bench: ${durationS} s per row, mock accounts (4 × maxConcurrency 8 per node), one redis-server, loopback; `
  + `every process shares the machine's cores (indicative only).\n\n`
  + '| what | connections | req/s | p50 ms | p99 ms | mean ms | errors |\n|---|---:|---:|---:|---:|---:|---:|\n'
  + rows.map((r) => `| ${r.what} | ${r.connections} | ${fmt(r.rps, 0)} | ${r.p50} | ${r.p99} | ${fmt(r.mean, 2)} | ${r.errors} |`).join('\n') + '\n')
const direct = rows.find((r) => r.what.startsWith('n2 directly') && r.connections === 1)
const hop = rows.find((r) => r.what.startsWith('n1, forwarded') && r.connections === 1)
if (direct && hop) process.stdout.write(`\nOne forwarding hop, one connection: +${fmt(hop.mean - direct.mean, 2)} ms mean latency.\n`)
