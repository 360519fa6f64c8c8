/**
 * Processes of the benchmark: started pinned to a core with `taskset` when it exists, read through /proc (CPU time,
 * resident memory, children), stopped by their own pid. Nothing here kills by name.
 */
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process'
import { openSync, readFileSync, readdirSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { createConnection, createServer } from 'node:net'

/** Why pinning is off, or undefined when server and load generator each get their own core. */
export const pinningUnavailable: string | undefined = (() => {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`
  if (availableParallelism() < 2) return `only ${availableParallelism()} core`
  const probe = spawnSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' })
  if (probe.error || probe.status !== 0) return 'taskset (util-linux) not found'
  return undefined
})()

export const SERVER_CORE = '0'
export const LOAD_CORE = '1'

/** below this many cores the unpinned arm is skipped: the load generator keeps one, the server would get one */
export const UNPINNED_MIN_CORES = 4

/** The cores this process may run on (its affinity list), e.g. `0-3,6` → [0, 1, 2, 3, 6]. */
function allowedCores(): number[] {
  const list = /Cpus_allowed_list:\s*(\S+)/.exec(readText('/proc/self/status'))?.[1]
  if (!list) return Array.from({ length: availableParallelism() }, (_, i) => i)
  return list.split(',').flatMap((range) => {
    const [a, b = a] = range.split('-').map(Number)
    return Array.from({ length: b - a + 1 }, (_, i) => a + i)
  })
}

/**
 * The unpinned arm's server cores: every core but the load generator's, where the design's payoff shows (account
 * workers run beside the main thread, which a single-threaded server cannot do); or why the arm is skipped.
 */
export function unpinnedCores(): { cores: string } | { skipped: string } {
  if (pinningUnavailable) return { skipped: `pinning is off (${pinningUnavailable}): every arm already runs unpinned` }
  const cores = allowedCores()
  if (cores.length < UNPINNED_MIN_CORES) {
    return { skipped: `this machine has ${cores.length} cores: the load generator needs one of them, so an unpinned orchestrator would get the same one core as the pinned arms (the arm needs ${UNPINNED_MIN_CORES} or more)` }
  }
  return { cores: cores.filter((c) => String(c) !== LOAD_CORE).join(',') }
}

/** `[command, ...args]` run on `core` (one core or a list such as `0,2,3`), or as is when pinning is unavailable. */
export function pinned(core: string, command: string, args: readonly string[]): [string, string[]] {
  return pinningUnavailable ? [command, [...args]] : ['taskset', ['-c', core, command, ...args]]
}

export interface Proc {
  readonly child: ChildProcess
  readonly pid: number
  readonly startedAt: number
  /** stdout and stderr, when sent to a file */
  readonly logFile: string | undefined
  stop(): Promise<void>
}

/** every process started here that has not exited: what an interrupted run stops, ready or not */
const alive = new Set<Proc>()

/** Stops every process this run started and that still runs (an interrupted run, whatever it was waiting for). */
export function stopEveryProc(): Promise<void> {
  return Promise.all([...alive].map((proc) => proc.stop())).then(() => {})
}

export function startProc(core: string, command: string, args: readonly string[], options: { logFile?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Proc {
  const [cmd, argv] = pinned(core, command, args)
  let stdio: StdioOptions = 'ignore'
  if (options.logFile) {
    const fd = openSync(options.logFile, 'a')
    stdio = ['ignore', fd, fd]
  }
  const startedAt = performance.now()
  const child = spawn(cmd, argv, { stdio, env: options.env ?? process.env, cwd: options.cwd })
  if (child.pid === undefined) throw new Error(`could not start ${command}`)
  const pid = child.pid
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const proc: Proc = {
    child, pid, startedAt, logFile: options.logFile,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
      await exited
      clearTimeout(timer)
    },
  }
  alive.add(proc)
  void exited.then(() => alive.delete(proc))
  return proc
}

/** Polls `check` every 20 ms until it returns a value; throws `what` after `ms`. */
export async function waitFor<T>(check: () => T | undefined | Promise<T | undefined>, what: string, ms = 30_000): Promise<T> {
  const deadline = performance.now() + ms
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

export function readText(file: string): string {
  try { return readFileSync(file, 'utf8') } catch { return '' }
}

/** A port the kernel just handed out (for servers that cannot report the one they bound, like nginx). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

/** the kernel's clock ticks per second: the unit of /proc/<pid>/stat's CPU times */
export const CLOCK_TICKS = (() => {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })
  const n = Number(out.stdout?.trim())
  return Number.isFinite(n) && n > 0 ? n : 100
})()

/** The process and every descendant (nginx's workers; `taskset` execs, so the pid is the server itself). */
export function processTree(pid: number): number[] {
  const parents = new Map<number, number[]>()
  let entries: string[] = []
  try { entries = readdirSync('/proc') } catch { return [pid] }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue
    const stat = readText(`/proc/${name}/stat`)
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    if (!parents.has(ppid)) parents.set(ppid, [])
    parents.get(ppid)!.push(Number(name))
  }
  const tree: number[] = []
  const visit = (p: number): void => {
    tree.push(p)
    for (const c of parents.get(p) ?? []) visit(c)
  }
  visit(pid)
  return tree
}

/** user + system CPU seconds of the process tree so far (all threads: /proc/<pid>/stat counts them). */
export function cpuSeconds(pids: readonly number[], dir = '/proc/'): number {
  let ticks = 0
  for (const pid of pids) {
    const stat = readText(`${dir}${pid}/stat`)
    if (!stat) continue
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    ticks += Number(fields[11]) + Number(fields[12]) // utime, stime (fields 14 and 15 of proc(5))
  }
  return ticks / CLOCK_TICKS
}

/** resident memory of the process tree, in MB */
export function rssMb(pids: readonly number[]): number {
  let kb = 0
  for (const pid of pids) {
    const match = /VmRSS:\s+(\d+) kB/.exec(readText(`/proc/${pid}/status`))
    if (match) kb += Number(match[1])
  }
  return kb / 1024
}
