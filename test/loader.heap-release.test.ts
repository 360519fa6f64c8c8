/**
 * Issue 16: what a large body leaves behind is given back (src/loader/heap-release.ts). A thread that parsed ~30 MB of
 * small blocks keeps the heap it grew to; with the release, once its last large body is done the heap is back near
 * what it was. Each case runs in its own worker thread, as the account workers and the check thread do.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Worker } from 'node:worker_threads'

const CASE = `
  const { workerData, parentPort } = require('node:worker_threads')
  const { getHeapStatistics } = require('node:v8')
  ;(async () => {
    const { HeapRelease } = await import(workerData.module)
    const blocks = []
    for (let i = 0; i < 800000; i++) blocks.push({ type: 'text', text: 'block ' + i })
    let body = JSON.stringify({ messages: [{ role: 'user', content: blocks }] })
    blocks.length = 0
    const heap = new HeapRelease()
    const large = workerData.release && heap.began(body.length)
    let parsed = JSON.parse(body)
    const grown = getHeapStatistics().total_heap_size
    parsed = undefined
    body = undefined
    if (large) heap.ended()
    // a thread that keeps serving: a little allocation now and then, as heartbeats and small requests make
    let keep
    const busy = setInterval(() => { keep = Array.from({ length: 100 }, (_, i) => ({ i })) }, 20)
    setTimeout(() => {
      clearInterval(busy)
      parentPort.postMessage({ grown, after: getHeapStatistics().total_heap_size, released: heap.released, keep: keep.length })
    }, 1600)
  })()
`

function run(release: boolean): Promise<{ grown: number; after: number; released: number }> {
  const module = new URL('../src/loader/heap-release.ts', import.meta.url).href
  const worker = new Worker(CASE, { eval: true, workerData: { module, release } })
  return new Promise((resolve, reject) => {
    worker.once('message', (m) => { void worker.terminate(); resolve(m as { grown: number; after: number; released: number }) })
    worker.once('error', reject)
  })
}

test('a thread gives back the heap a large body grew, once its last one is done; without it the heap stays', async () => {
  const MB = 1024 * 1024
  const kept = await run(false)
  assert.ok(kept.grown > 100 * MB, `the parse grew the heap (${(kept.grown / MB).toFixed(0)} MB)`)
  assert.ok(kept.after > 0.5 * kept.grown, `without the release the heap stays (${(kept.after / MB).toFixed(0)} MB)`)
  const given = await run(true)
  assert.equal(given.released, 1, 'one release for the body')
  assert.ok(given.after < 40 * MB, `the heap is given back: ${(given.grown / MB).toFixed(0)} → ${(given.after / MB).toFixed(0)} MB`)
})
