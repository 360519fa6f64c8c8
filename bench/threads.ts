/**
 * CPU per thread of a server process, from /proc/<pid>/task/<tid>/{stat,comm}, read before and after each measured
 * run. Threads are told apart by the name the kernel holds for them (`comm`, at most 15 characters); on Node 24
 * (checked on 24.21.0, an orchestrator with mock accounts and the two baselines) a process has:
 *
 * | comm              | count       | what                                                                  | kind    |
 * |-------------------|-------------|-----------------------------------------------------------------------|---------|
 * | `MainThread`      | 1 (tid=pid) | the event loop: HTTP, the dispatcher; its own GC pauses count here    | main    |
 * | `WorkerThread`    | 1 a worker  | a worker_threads Worker (an account); a Worker made with the `name`   | workers |
 * |                   |             | option carries that name instead, so any name not below is a worker   |         |
 * | `V8Worker`        | 4           | V8's platform pool (`--v8-pool-size`): parallel scavenge and marking  | v8      |
 * |                   |             | helpers for every isolate (main and workers alike), concurrent JIT    |         |
 * | `DelayedTaskSche` | 1           | node's DelayedTaskScheduler: V8's delayed platform tasks              | v8      |
 * | `libuv-worker`    | 4           | libuv's pool (fs, dns.lookup, crypto, zlib)                           | libuv   |
 * | `SignalInspector` | 1           | waits for SIGUSR1 to start the inspector                              | other   |
 *
 * The report's three columns are main / workers / GC+other, the last = v8 + libuv + other (+ child processes, such as
 * nginx's workers, and threads that exited during the run). The smoke test checks that an orchestrator with N
 * accounts shows exactly N worker threads, which catches a helper thread that a future Node names differently.
 */
import { readdirSync } from 'node:fs'
import { CLOCK_TICKS, cpuSeconds, readText } from './procs.ts'

export type ThreadKind = 'main' | 'workers' | 'v8' | 'libuv' | 'other'

const HELPERS: Readonly<Record<string, ThreadKind>> = {
  V8Worker: 'v8',
  DelayedTaskSche: 'v8',
  'libuv-worker': 'libuv',
  SignalInspector: 'other',
  // names of other Node builds, so that they are not taken for workers (Node before thread names called them all
  // `node`; some builds say `V8 DefaultWorke`)
  node: 'other',
  'V8 DefaultWorke': 'v8',
}

export function threadKind(tid: number, pid: number, comm: string): ThreadKind {
  if (tid === pid) return 'main'
  return HELPERS[comm] ?? 'workers'
}

export interface ThreadSample {
  /** tid → name and user + system ticks so far */
  readonly threads: ReadonlyMap<number, { comm: string; ticks: number }>
  /** the whole process's ticks (threads that have exited included) */
  readonly processTicks: number
  /** the other processes of the tree (nginx's workers, a session's children), seconds */
  readonly childrenSeconds: number
}

const ticksOf = (stat: string): number => {
  if (!stat) return 0
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(fields[11]) + Number(fields[12]) // utime, stime (fields 14 and 15 of proc(5))
}

export function sampleThreads(pid: number, tree: readonly number[]): ThreadSample {
  const threads = new Map<number, { comm: string; ticks: number }>()
  let tids: string[] = []
  try { tids = readdirSync(`/proc/${pid}/task`) } catch { /* exited: an empty sample */ }
  for (const tid of tids) {
    const dir = `/proc/${pid}/task/${tid}`
    threads.set(Number(tid), { comm: readText(`${dir}/comm`).trim(), ticks: ticksOf(readText(`${dir}/stat`)) })
  }
  return { threads, processTicks: ticksOf(readText(`/proc/${pid}/stat`)), childrenSeconds: cpuSeconds(tree.filter((p) => p !== pid)) }
}

/** CPU seconds between two samples, by kind; `other` holds v8 and libuv too (they are its named parts). */
export interface ThreadCpu {
  main: number
  workers: number
  other: number
  v8: number
  libuv: number
}

export function cpuBetween(pid: number, before: ThreadSample, after: ThreadSample): ThreadCpu {
  const cpu: ThreadCpu = { main: 0, workers: 0, other: 0, v8: 0, libuv: 0 }
  let threadTicks = 0
  for (const [tid, { comm, ticks }] of after.threads) {
    const delta = ticks - (before.threads.get(tid)?.ticks ?? 0) // a thread born during the run: all of its time
    threadTicks += delta
    const kind = threadKind(tid, pid, comm)
    if (kind === 'main' || kind === 'workers') cpu[kind] += delta / CLOCK_TICKS
    else {
      cpu.other += delta / CLOCK_TICKS
      if (kind !== 'other') cpu[kind] += delta / CLOCK_TICKS
    }
  }
  // A thread that exited during the run (or was born and gone within it) took its time out of the per-thread sums,
  // not out of the process's. Each thread's ticks are truncated on their own (up to one tick a thread), so the
  // difference is read only when a thread is known to have gone or when it exceeds that rounding.
  const rest = after.processTicks - before.processTicks - threadTicks
  const gone = [...before.threads.keys()].some((tid) => !after.threads.has(tid))
  if (rest > 0 && (gone || rest > after.threads.size + 1)) cpu.other += rest / CLOCK_TICKS
  cpu.other += Math.max(0, after.childrenSeconds - before.childrenSeconds)
  return cpu
}

export interface ThreadName {
  comm: string
  count: number
  kind: ThreadKind
}

/** the names a sample holds, with how many threads carry each and how they are counted */
export function threadNames(pid: number, sample: ThreadSample): ThreadName[] {
  const byName = new Map<string, ThreadName>()
  for (const [tid, { comm }] of sample.threads) {
    const kind = threadKind(tid, pid, comm)
    const key = `${comm}\0${kind}`
    const seen = byName.get(key)
    if (seen) seen.count++
    else byName.set(key, { comm, count: 1, kind })
  }
  return [...byName.values()]
}
