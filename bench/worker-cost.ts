/**
 * What one module costs a worker thread: starts N live worker threads that each import it (none when no module is
 * given) and stay alive, then prints the resident memory and CPU time each added to this process.
 *
 *   node bench/worker-cost.ts [module-url-or-path] [--workers 10]
 *   node bench/worker-cost.ts --account            # the account worker's entry as the orchestrator loads it
 *   taskset -c 0 node bench/worker-cost.ts …       # on one core, as the bench pins the server
 *
 * A worker must be kept alive to be measured: one that has nothing left to do exits, and an exited worker leaves only
 * what the allocator keeps (~7 MB on Node 24 against ~12 MB for a live one).
 */
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { Worker } from 'node:worker_threads'
import { prepareWorkerCode } from '../src/loader/worker-code.ts'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { workers: { type: 'string', default: '10' }, account: { type: 'boolean', default: false } },
})
const n = Number(values.workers)
const target = values.account ? prepareWorkerCode().entry
  : positionals[0] === undefined ? undefined
  : /^[a-z]+:/.test(positionals[0]) ? positionals[0] : pathToFileURL(resolve(positionals[0])).href

const rssMb = (): number => process.memoryUsage().rss / 2 ** 20
await new Promise((r) => setTimeout(r, 300))
const rssBefore = rssMb()
const cpuBefore = process.cpuUsage()
const started = performance.now()
const body = `const { parentPort } = require('node:worker_threads')
  ${target ? `import(${JSON.stringify(target)}).then(() => parentPort.postMessage('ready'))` : `parentPort.postMessage('ready')`}
  setInterval(() => {}, 60_000) // stay alive: an exited worker is not what an idle account costs`
const workers = await Promise.all(Array.from({ length: n }, () => new Promise<Worker>((res, rej) => {
  const worker = new Worker(body, { eval: true })
  worker.once('message', () => res(worker))
  worker.once('error', rej)
})))
const startMs = performance.now() - started
const cpu = process.cpuUsage(cpuBefore)
await new Promise((r) => setTimeout(r, 1_000)) // let the heaps settle
process.stdout.write(`${JSON.stringify({
  module: target ?? '(none)', workers: n, mbPerWorker: +((rssMb() - rssBefore) / n).toFixed(1),
  cpuMsPerWorker: +((cpu.user + cpu.system) / 1000 / n).toFixed(1), wallMsAll: Math.round(startMs),
})}\n`)
await Promise.all(workers.map((w) => w.terminate()))
