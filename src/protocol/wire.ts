/**
 * How the data path's busiest messages cross the thread boundary: `run`, `cancel`, `chunk` and `done` travel as flat
 * arrays with a numeric tag, checked by hand on arrival; every other message (heartbeat, ready, failed, child, log)
 * travels as its object and is parsed by its zod schema in messages.ts, as before.
 *
 * Why: structured clone writes every key of every object and rebuilds objects key by key on the other side; an array
 * of primitives clones about 4× faster (1.2 µs against 4.7 µs for a `run` batch of one), and the zod parse of each
 * batch was ~2.5 % of the main thread's and ~4 % of a worker's busy time in the benchmark's profile (bench/README).
 * test/protocol.wire.test.ts checks the hand-written checks against the zod schemas: same messages accepted, same
 * malformed ones refused.
 */
import { FromWorker, ToWorker, type Usage } from './messages.ts'

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
  if (!Array.isArray(m)) return ToWorker.parse(m)
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

export function decodeFromWorkerBatch(raw: unknown): FromWorker[] {
  if (!Array.isArray(raw)) throw new WireError('batch from a worker', raw)
  const out: FromWorker[] = new Array(raw.length)
  for (let i = 0; i < raw.length; i++) out[i] = decodeFromWorker(raw[i])
  return out
}

function decodeFromWorker(m: unknown): FromWorker {
  if (!Array.isArray(m)) return FromWorker.parse(m)
  if (m[0] === CHUNK && m.length === 3 && num(m[1]) && typeof m[2] === 'string') return { kind: 'chunk', id: m[1], text: m[2] }
  if (m[0] === DONE && m.length === 6 && num(m[1]) && (m[2] === undefined || typeof m[2] === 'string') &&
    typeof m[3] === 'string' && num(m[4]) && num(m[5])) {
    return { kind: 'done', id: m[1], body: m[2], usage: { input_tokens: m[4], output_tokens: m[5] }, model: m[3] }
  }
  throw new WireError('message from a worker', m)
}
