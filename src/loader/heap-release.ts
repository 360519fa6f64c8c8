/**
 * A thread that parsed a large body keeps the heap it grew to: V8 holds the pages for reuse and, on a thread that
 * never goes idle for long, never gives them back (a worker that parsed 27 MiB of small blocks stayed at ~285 MB RSS
 * for minutes; docs/performance.md, "Figures behind the code"). Every account worker that ever ran such a body would
 * keep its share, so what one client could make the process hold grew with the number of accounts. This gives the
 * heap back: as soon as the thread's last large body is done (its answer already posted), one "last resort" full
 * collection (the one V8 runs before it gives up on memory), which releases the free pages (~285 → ~100 MB in ~40 ms).
 * Only after large bodies: the collection pauses the thread, which a thread serving small requests should never pay;
 * at once rather than later, so that the pause falls while the main thread still sends the account's other work
 * elsewhere (src/dispatch/parse-window.ts).
 *
 * The collector is reached without a process flag: `--expose-gc` set at run time puts `gc` in contexts created after,
 * and a fresh `vm` context hands it over; it collects the heap of the thread that calls it.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/** bodies from this size on count as large: below it, what a parse leaves behind is small */
export const RELEASE_CHARS = 4 * 1024 * 1024

type Collect = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void
let collect: Collect | null | undefined

function collector(): Collect | null {
  if (collect === undefined) {
    try {
      setFlagsFromString('--expose-gc')
      collect = runInNewContext('gc') as Collect
    } catch {
      collect = null // not offered by this runtime: the heap stays as V8 keeps it
    }
  }
  return collect
}

export class HeapRelease {
  #large = 0
  #scheduled = false
  /** how many times the heap was given back (for tests and the worker's stats) */
  released = 0

  /** A body of `chars` characters is being worked on; answers whether it counts (then `ended` must follow). */
  began(chars: number): boolean {
    if (chars < RELEASE_CHARS) return false
    this.#large++
    return true
  }

  /** A large body's work is done: once none is left, the heap is given back, after what this turn posts. */
  ended(): void {
    if (--this.#large > 0 || this.#scheduled) return
    this.#scheduled = true
    setImmediate(this.#release)
  }

  #release = (): void => {
    this.#scheduled = false
    if (this.#large > 0) return
    const gc = collector()
    if (!gc) return
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' })
    this.released++
  }
}
