/**
 * Top self-time functions of `--cpu-prof` profiles (`npm run bench -- --cpu-prof` writes them under
 * bench/results/profiles/<arm>/): one table per thread kind, the main thread and the account workers summed.
 *
 *   node bench/profile-summary.ts bench/results/profiles/orch-8 [--top 25] [--from S]
 *
 * `--from S` skips the first S seconds after the earliest profile's start (start-up and module loading).
 */
import { readFileSync, readdirSync } from 'node:fs'
import { join, relative } from 'node:path'
import { parseArgs } from 'node:util'

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] }
interface Profile { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '25' }, from: { type: 'string', default: '0' } }, allowPositionals: true })
const dir = positionals[0] ?? 'bench/results/profiles'
const top = Number(values.top)
const ROOT = process.cwd()

/** self time per function (µs), from the sample stream (hitCount alone ignores the uneven sampling intervals) */
function selfTimes(profile: Profile, fromUs: number): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const times = new Map<string, number>()
  let at = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0
    if (at < fromUs) continue
    const node = byId.get(profile.samples[i])!
    const { functionName, url, lineNumber } = node.callFrame
    const where = url ? `${url.startsWith('file://') ? relative(ROOT, new URL(url).pathname) : url}:${lineNumber + 1}` : ''
    const key = `${functionName || '(anonymous)'}${where ? ` ${where}` : ''}`
    times.set(key, (times.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0))
  }
  return times
}

const files = readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.cpuprofile'))
const profiles = files.map((file) => ({ file, profile: JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile }))
// profiles of one process share a monotonic clock: skip from the earliest start
const fromUs = Math.min(...profiles.map((p) => p.profile.startTime)) + Number(values.from) * 1e6
const groups = new Map<string, { files: number; times: Map<string, number> }>()
for (const { file, profile } of profiles) {
  // node names them CPU.<date>.<pid>.<tid>.<seq>.cpuprofile; thread 0 is the main thread
  const tid = Number(file.split('.').at(-3))
  const group = `${file.includes('/') ? `${file.slice(0, file.lastIndexOf('/'))} ` : ''}${tid === 0 ? 'main thread' : 'workers'}`
  const entry = groups.get(group) ?? { files: 0, times: new Map<string, number>() }
  entry.files++
  for (const [k, v] of selfTimes(profile, fromUs)) entry.times.set(k, (entry.times.get(k) ?? 0) + v)
  groups.set(group, entry)
}

for (const [group, { files: n, times }] of groups) {
  const total = [...times.values()].reduce((s, x) => s + x, 0)
  const idle = times.get('(idle)') ?? 0
  process.stdout.write(`\n#### ${group} (${n} profile${n > 1 ? 's' : ''}; ${(total / 1e6).toFixed(1)} s sampled, ${((100 * idle) / total).toFixed(0)} % idle)\n\n`)
  process.stdout.write('| self % of busy | self ms | function |\n|---:|---:|---|\n')
  const busy = total - idle
  const rows = [...times].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, top)
  for (const [k, v] of rows) process.stdout.write(`| ${((100 * v) / busy).toFixed(1)} | ${(v / 1000).toFixed(0)} | \`${k}\` |\n`)
  // the same time by where the code lives: a package, one of our files, node's internals, or native
  const byOwner = new Map<string, number>()
  for (const [k, v] of times) {
    if (k === '(idle)') continue
    const where = k.split(' ')[1] ?? ''
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(where)?.[1]
    const owner = pkg ?? (where.startsWith('node:') ? `node:${where.slice(5).split(':')[0].split('/').slice(0, 2).join('/')}` : where ? where.split(':')[0] : k)
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + v)
  }
  process.stdout.write('\n| self % of busy | owner |\n|---:|---|\n')
  for (const [k, v] of [...byOwner].sort((a, b) => b[1] - a[1]).slice(0, 20)) process.stdout.write(`| ${((100 * v) / busy).toFixed(1)} | \`${k}\` |\n`)
}
