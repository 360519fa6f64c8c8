/**
 * Idle memory and start-up of the orchestrator alone, quicker than the bench's memory section (no load phase):
 *
 *   node bench/idle.ts [--accounts 1,30,100] [--rounds N] [--settle-ms 2000] [--config-extra '{"dispatcher":{…}}']
 *
 * Starts `node src/main.ts` with N mock accounts (parked by the default `lazyWorkers: "auto"`; every worker started
 * with `--config-extra '{"dispatcher":{"lazyWorkers":{"enabled":false}}}'`), pinned to the server core like the
 * bench, and prints per N the median of `rounds` starts: spawn → listening (wall clock), the server's own logged
 * readyMs (from the dispatcher's start), the server's CPU time (all threads) spent by then, RSS after settling, and
 * the load average at that moment (the machine is shared: a figure without it means little).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { cpuSeconds, rssMb } from './procs.ts'
import { startOrchestrator, type Running } from './servers.ts'

const { values } = parseArgs({
  options: {
    accounts: { type: 'string', default: '1,30,100' },
    rounds: { type: 'string', default: '1' },
    'settle-ms': { type: 'string', default: '2000' },
    'config-extra': { type: 'string' },
  },
})
const counts = values.accounts.split(',').map(Number)
const rounds = Number(values.rounds)
const settleMs = Number(values['settle-ms'])
const extra = values['config-extra'] ? JSON.parse(values['config-extra']) as Record<string, unknown> : undefined
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const dir = mkdtempSync(join(tmpdir(), 'agyc-idle-'))

try {
  for (const accounts of counts) {
    const ready: number[] = []
    const logged: number[] = []
    const rss: number[] = []
    const cpu: number[] = []
    const loads: string[] = []
    for (let r = 0; r < rounds; r++) {
      const started = await startOrchestrator(dir, `idle-${accounts}-${r}`, { accounts, session: { kind: 'mock', latencyMs: 0 }, extra })
      if ('skipped' in started) throw new Error(started.skipped)
      const server: Running = started
      cpu.push(cpuSeconds(server.pids()) * 1000) // CPU spent to get ready: steadier than wall clock on a shared machine
      await new Promise((res) => setTimeout(res, settleMs)) // first heartbeats and GC settle
      ready.push(server.readyMs)
      logged.push(server.loggedReadyMs ?? Number.NaN)
      rss.push(rssMb(server.pids()))
      loads.push(loadavg()[0].toFixed(1))
      await server.stop()
    }
    process.stdout.write(`${JSON.stringify({
      accounts, rounds, readyMs: Math.round(median(ready)), loggedReadyMs: Math.round(median(logged)),
      cpuToReadyMs: Math.round(median(cpu)),
      rssMb: Math.round(median(rss)), all: { ready: ready.map(Math.round), rss: rss.map(Math.round) }, load1: loads,
    })}\n`)
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
