/**
 * The flat wire forms of the data path's busiest messages (`run`, `cancel`, `chunk`, `done`), encoded and checked by
 * hand, with no zod: this module is all of the protocol an account worker loads at run time. zod would cost every
 * worker's isolate ~7 MB (measured: 14 MB for a worker importing zod against 7 MB for a bare one), and a worker has
 * nothing left for it to check: every message the main thread sends it has a flat form. The main thread's side, which
 * still parses the rare object-form messages from workers with zod, is wire.ts.
 */
import type { FromWorker, ToWorker, Usage } from './messages.ts'

const RUN = 0
const CANCEL = 1
const CHUNK = 2
const DONE = 3

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

const optionalString = (x: unknown): x is string | undefined => x === undefined || typeof x === 'string'

/** zod's z.number(): finite numbers only */
const num = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x)

// ── main → worker ─────────────────────────────────────────────────────────────────────────────────────────────────
export function encodeToWorker(command: ToWorker): unknown {
  switch (command.kind) {
    case 'run':
      return [RUN, command.id, command.body, command.model, command.stream, command.maxTokens, command.requestId,
        command.anthropicBeta, command.anthropicVersion]
    case 'cancel':
      return [CANCEL, command.id]
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
  if (m[0] === RUN && m.length === 9 && num(m[1]) && typeof m[2] === 'string' && typeof m[3] === 'string' &&
    typeof m[4] === 'boolean' && num(m[5]) && typeof m[6] === 'string' && optionalString(m[7]) && optionalString(m[8])) {
    const run: ToWorker = { kind: 'run', id: m[1], body: m[2], model: m[3], stream: m[4], maxTokens: m[5], requestId: m[6] }
    if (m[7] !== undefined) run.anthropicBeta = m[7]
    if (m[8] !== undefined) run.anthropicVersion = m[8]
    return run
  }
  if (m[0] === CANCEL && m.length === 2 && num(m[1])) return { kind: 'cancel', id: m[1] }
  throw new WireError('message for a worker', m)
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
      if (!plainUsage(event.usage)) return event
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
