/**
 * The flat wire forms of the data path's busiest messages (`run`, `cancel`, `chunk`, `done`), encoded and checked by
 * hand, with no zod: this module is all of the protocol an account worker loads at run time. zod would cost every
 * worker's isolate ~7 MB (measured: 14 MB for a worker importing zod against 7 MB for a bare one), and a worker has
 * nothing left for it to check: every message the main thread sends it has a flat form. The main thread's side, which
 * still parses the rare object-form messages from workers with zod, is wire.ts.
 */
import type { FromWorker, ToWorker, Usage } from './messages.ts'
import { RUN_FIELDS, RUN_KEYS, fieldAccepts, type RunRequest } from './run-request.ts'

const RUN = 0
const CANCEL = 1
const CHUNK = 2
const DONE = 3
const ACK = 4

/** a malformed message is our bug: fail loudly, as the zod parse did */
export class WireError extends TypeError {
  constructor(what: string, raw: unknown) {
    super(`malformed ${what}: ${safeJson(raw)}`)
    this.name = 'WireError'
  }
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value)?.slice(0, 200) ?? String(value)
  } catch {
    return String(value)
  }
}

/** zod's z.number(): finite numbers only */
const num = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x)

// ── main → worker ─────────────────────────────────────────────────────────────────────────────────────────────────
export function encodeToWorker(command: ToWorker): unknown {
  switch (command.kind) {
    case 'run': {
      // [RUN, id, ...the request's fields in RUN_FIELDS order]
      const out: unknown[] = new Array(2 + RUN_KEYS.length)
      out[0] = RUN
      out[1] = command.id
      for (let i = 0; i < RUN_KEYS.length; i++) out[i + 2] = command[RUN_KEYS[i]]
      return out
    }
    case 'cancel':
      return [CANCEL, command.id]
    case 'ack':
      return [ACK, command.id, command.taken]
  }
}

export function decodeToWorkerBatch(raw: unknown): ToWorker[] {
  if (!Array.isArray(raw)) throw new WireError('batch for a worker', raw)
  const out: ToWorker[] = new Array(raw.length)
  for (let i = 0; i < raw.length; i++) out[i] = decodeToWorker(raw[i])
  return out
}

function decodeToWorker(m: unknown): ToWorker {
  // every message to a worker has a flat form: an object here is a bug on the main thread's side
  if (!Array.isArray(m)) throw new WireError('message for a worker', m)
  if (m[0] === RUN && m.length === 2 + RUN_KEYS.length && num(m[1])) return { kind: 'run', id: m[1], ...decodeRun(m) }
  if (m[0] === CANCEL && m.length === 2 && num(m[1])) return { kind: 'cancel', id: m[1] }
  if (m[0] === ACK && m.length === 3 && num(m[1]) && num(m[2])) return { kind: 'ack', id: m[1], taken: m[2] }
  throw new WireError('message for a worker', m)
}

/** The request's fields of a flat `run`, checked against RUN_FIELDS; an optional field left out stays absent. */
function decodeRun(m: readonly unknown[]): RunRequest {
  const run: Record<string, unknown> = {}
  for (let i = 0; i < RUN_KEYS.length; i++) {
    const key = RUN_KEYS[i]
    const value = m[i + 2]
    if (!fieldAccepts(RUN_FIELDS[key], value)) throw new WireError('message for a worker', m)
    if (value !== undefined) run[key] = value
  }
  return run as RunRequest
}

// ── worker → main ─────────────────────────────────────────────────────────────────────────────────────────────────
const plainUsage = (usage: Usage): boolean => {
  let n = 0
  for (const _ in usage) n++
  return n === 2 && typeof usage.input_tokens === 'number' && typeof usage.output_tokens === 'number'
}

export function encodeFromWorker(event: FromWorker): unknown {
  switch (event.kind) {
    case 'chunk':
      return [CHUNK, event.id, event.text]
    case 'done':
      // a usage with more than the two counts (cache tokens…) keeps the object form: rare, and zod checks it
      if (!plainUsage(event.usage) || event.parked !== undefined) return event
      return [DONE, event.id, event.body, event.model, event.usage.input_tokens, event.usage.output_tokens]
    default:
      return event
  }
}

/** the flat forms of `chunk` and `done`; anything else in an array is refused */
export function decodeFromWorkerTuple(m: readonly unknown[]): FromWorker {
  if (m[0] === CHUNK && m.length === 3 && num(m[1]) && typeof m[2] === 'string') return { kind: 'chunk', id: m[1], text: m[2] }
  if (m[0] === DONE && m.length === 6 && num(m[1]) && (m[2] === undefined || typeof m[2] === 'string') &&
    typeof m[3] === 'string' && num(m[4]) && num(m[5])) {
    return { kind: 'done', id: m[1], body: m[2], usage: { input_tokens: m[4], output_tokens: m[5] }, model: m[3] }
  }
  throw new WireError('message from a worker', m)
}
