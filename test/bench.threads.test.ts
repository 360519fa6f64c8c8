/**
 * The bench's CPU split reads each thread's name from /proc and counts it as main, a worker or GC/other
 * (bench/threads.ts). Checked on this process's real threads, with real worker threads.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { test } from 'node:test'
import { Worker } from 'node:worker_threads'
import { cpuBetween, sampleThreads, threadNames } from '../bench/threads.ts'

const idle = 'require("node:worker_threads").parentPort.once("message", () => process.exit(0))'

test('the main thread, worker threads (named or not) and node\'s helper threads are each counted where they belong', { skip: process.platform !== 'linux' }, async (t) => {
  const workers = [new Worker(idle, { eval: true }), new Worker(idle, { eval: true, name: 'acc-named' })]
  t.after(() => Promise.all(workers.map((w) => w.terminate())))
  await Promise.all(workers.map((w) => once(w, 'online')))
  const names = threadNames(process.pid, sampleThreads(process.pid, [process.pid]))
  const kind = (comm: string) => names.find((n) => n.comm === comm)?.kind
  assert.equal(kind('MainThread'), 'main')
  assert.equal(kind('WorkerThread'), 'workers')
  assert.equal(kind('acc-named'), 'workers', 'a Worker made with `name` carries that name, and is still a worker')
  assert.equal(kind('V8Worker'), 'v8')
  assert.equal(names.filter((n) => n.kind === 'workers').reduce((sum, n) => sum + n.count, 0), 2, JSON.stringify(names))
})

// 300 ms of the thread's own CPU, however long a loaded machine takes to give it (not 300 ms of wall time)
const burn = 'const start = process.threadCpuUsage(); const used = () => { const u = process.threadCpuUsage(start); return (u.user + u.system) / 1000 }; while (used() < 300); require("node:worker_threads").parentPort.postMessage("done")'

test('a worker that burns CPU between two readings is counted in workers', { skip: process.platform !== 'linux' }, async (t) => {
  const worker = new Worker(`${burn}; require("node:worker_threads").parentPort.once("message", () => process.exit(0))`, { eval: true })
  t.after(() => worker.terminate())
  const before = sampleThreads(process.pid, [process.pid])
  await once(worker, 'message')
  const used = cpuBetween(process.pid, before, sampleThreads(process.pid, [process.pid]))
  assert.ok(used.workers >= 0.2, `the worker's 300 ms of CPU: ${JSON.stringify(used)}`)
})

test('a worker born and gone between two readings keeps its CPU time, counted as other', { skip: process.platform !== 'linux' }, async () => {
  const before = sampleThreads(process.pid, [process.pid])
  const worker = new Worker(burn, { eval: true })
  await once(worker, 'exit')
  // its thread is gone from /proc/<pid>/task: its time shows only in the process's total
  const used = cpuBetween(process.pid, before, sampleThreads(process.pid, [process.pid]))
  assert.ok(used.other >= 0.2, `the exited worker's 300 ms of CPU: ${JSON.stringify(used)}`)
})
