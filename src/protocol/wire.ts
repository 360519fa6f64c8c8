/**
 * How the data path's busiest messages cross the thread boundary: `run`, `cancel`, `chunk` and `done` travel as flat
 * arrays with a numeric tag, checked by hand on arrival; every other message (heartbeat, ready, failed, child, log)
 * travels as its object and is parsed by its zod schema in messages.ts, as before.
 *
 * Why: structured clone writes every key of every object and rebuilds objects key by key on the other side; an array
 * of primitives clones about 4× faster (1.2 µs against 4.7 µs for a `run` batch of one), and the zod parse of each
 * batch was ~2.5 % of the main thread's and ~4 % of a worker's busy time in the benchmark's profile (docs/performance.md, "Figures behind the code").
 * test/protocol.wire.test.ts checks the hand-written checks against the zod schemas: same messages accepted, same
 * malformed ones refused.
 *
 * The flat forms live in tuples.ts, which has no zod, because workers import it; this module adds the main thread's
 * decoding of what workers send, where the rare object-form messages are still parsed by zod.
 */
import { FromWorker } from './messages.ts'
import { WireError, decodeFromWorkerTuple } from './tuples.ts'

export * from './tuples.ts'

export function decodeFromWorkerBatch(raw: unknown): FromWorker[] {
  if (!Array.isArray(raw)) throw new WireError('batch from a worker', raw)
  const out: FromWorker[] = new Array(raw.length)
  for (let i = 0; i < raw.length; i++) {
    const m: unknown = raw[i]
    out[i] = Array.isArray(m) ? decodeFromWorkerTuple(m) : FromWorker.parse(m)
  }
  return out
}
