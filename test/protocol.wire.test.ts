/**
 * The hand-written checks of the hot wire forms (src/protocol/wire.ts) against the zod schemas they stand in for:
 * every message survives the trip unchanged, exactly as the zod parse would return it, and a malformed hot message is
 * refused just as zod refuses the same fields in object form.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { FromWorker, ToWorker } from '../src/protocol/messages.ts'
import { WireError, decodeFromWorkerBatch, decodeToWorkerBatch, encodeFromWorker, encodeToWorker } from '../src/protocol/wire.ts'

const toWorker: ToWorker[] = [
  { kind: 'run', id: 1, body: '{"model":"m","messages":[]}', model: 'claude-x', stream: false, maxTokens: 64, requestId: 'req_1' },
  { kind: 'run', id: 2, body: '', model: '', stream: true, maxTokens: 0, requestId: '' },
  { kind: 'run', id: 3, body: '{}', model: 'm', stream: true, maxTokens: 1, requestId: 'r', anthropicBeta: 'claude-code-20250219', anthropicVersion: '2023-06-01' },
  { kind: 'cancel', id: 3 },
  { kind: 'ack', id: 3, taken: 262144 },
]

const fromWorker: FromWorker[] = [
  { kind: 'chunk', id: 1, text: 'event: ping\ndata: {}\n\n' },
  { kind: 'done', id: 2, body: '{"id":"msg_1"}', usage: { input_tokens: 3, output_tokens: 4 }, model: 'claude-x' },
  { kind: 'done', id: 3, body: undefined, usage: { input_tokens: 0, output_tokens: 0 }, model: 'm' },
  // extra usage counts keep the object form
  { kind: 'done', id: 4, body: '{}', usage: { input_tokens: 1, output_tokens: 2, cache_read_input_tokens: 7 }, model: 'm' },
  { kind: 'failed', id: 5, code: 'AGYC_UPSTREAM_FAILED', message: 'boom', retryAfterS: 2 },
  { kind: 'ready' },
  { kind: 'child', pid: 42, alive: true },
  { kind: 'heartbeat', at: 1, running: 0, queued: 0, peakRunning: 1, loopDelayMs: 0.5, restarts: 0 },
  { kind: 'log', level: 'warn', msg: 'hello', fields: { a: 1 } },
]

/** what crossing a thread does to a value */
const cross = <T>(value: T): T => structuredClone(value)

test('every message to a worker arrives as the zod parse of the original', () => {
  const decoded = decodeToWorkerBatch(cross(toWorker.map(encodeToWorker)))
  assert.deepEqual(decoded, toWorker.map((m) => ToWorker.parse(m)))
})

test('every message from a worker arrives as the zod parse of the original', () => {
  const decoded = decodeFromWorkerBatch(cross(fromWorker.map(encodeFromWorker)))
  assert.deepEqual(decoded, fromWorker.map((m) => FromWorker.parse(m)))
})

test('hot messages travel as flat arrays, the rest as objects', () => {
  const wire = fromWorker.map(encodeFromWorker)
  assert.deepEqual(wire.map(Array.isArray), [true, true, true, false, false, false, false, false, false])
  assert.ok(toWorker.map(encodeToWorker).every(Array.isArray))
})

/** each entry: the object form zod refuses, and the same mistake in wire form */
function malformedToWorker(): [unknown, unknown][] {
  const [run] = toWorker.map(encodeToWorker) as unknown[][]
  const bad: [unknown, unknown][] = []
  const fields = ['id', 'body', 'model', 'stream', 'maxTokens', 'requestId'] as const
  fields.forEach((field, i) => {
    const wrong = typeof (toWorker[0] as Record<string, unknown>)[field] === 'string' ? 1 : 'x'
    const object = { ...toWorker[0], [field]: wrong }
    const wire = [...run]
    wire[i + 1] = wrong
    bad.push([object, wire])
    const { [field]: _gone, ...missing } = toWorker[0] as Record<string, unknown>
    bad.push([missing, run.slice(0, i + 1)])
  })
  bad.push([{ kind: 'cancel', id: 'x' }, [1, 'x']])
  bad.push([{ kind: 'nope', id: 1 }, [9, 1]])
  return bad
}

function malformedFromWorker(): [unknown, unknown][] {
  return [
    [{ kind: 'chunk', id: 1, text: 5 }, [2, 1, 5]],
    [{ kind: 'chunk', id: '1', text: 'a' }, [2, '1', 'a']],
    [{ kind: 'chunk', id: 1 }, [2, 1]],
    [{ kind: 'done', id: 1, body: 5, usage: { input_tokens: 1, output_tokens: 1 }, model: 'm' }, [3, 1, 5, 'm', 1, 1]],
    [{ kind: 'done', id: 1, body: 'b', usage: { input_tokens: 1, output_tokens: 1 }, model: 7 }, [3, 1, 'b', 7, 1, 1]],
    [{ kind: 'done', id: 1, body: 'b', usage: { input_tokens: '1', output_tokens: 1 }, model: 'm' }, [3, 1, 'b', 'm', '1', 1]],
    [{ kind: 'done', id: 1, body: 'b', usage: { input_tokens: 1 }, model: 'm' }, [3, 1, 'b', 'm', 1]],
    [{ kind: 'chunk', id: Number.NaN, text: 'a' }, [2, Number.NaN, 'a']],
    [{ kind: 'done', id: 1, body: 'b', usage: { input_tokens: Infinity, output_tokens: 1 }, model: 'm' }, [3, 1, 'b', 'm', Infinity, 1]],
    [{ kind: 'nope' }, [8, 1, 2]],
  ]
}

test('a malformed message to a worker is refused in wire form as zod refuses its object form', () => {
  for (const [object, wire] of malformedToWorker()) {
    assert.equal(ToWorker.safeParse(object).success, false, `zod accepted ${JSON.stringify(object)}`)
    assert.throws(() => decodeToWorkerBatch([wire]), WireError, `wire accepted ${JSON.stringify(wire)}`)
  }
  assert.throws(() => decodeToWorkerBatch({ not: 'an array' }), WireError)
  // every message to a worker has a flat form; a worker has no zod to parse an object with (tuples.ts)
  assert.throws(() => decodeToWorkerBatch([toWorker[0]]), WireError, 'an object-form run is refused')
})

test('a malformed message from a worker is refused in wire form as zod refuses its object form', () => {
  for (const [object, wire] of malformedFromWorker()) {
    assert.equal(FromWorker.safeParse(object).success, false, `zod accepted ${JSON.stringify(object)}`)
    assert.throws(() => decodeFromWorkerBatch([wire]), WireError, `wire accepted ${JSON.stringify(wire)}`)
  }
  // the object forms are still checked by zod
  assert.throws(() => decodeFromWorkerBatch([{ kind: 'failed', id: 1, code: 'NOT_A_CODE', message: 'x' }]))
  assert.throws(() => decodeFromWorkerBatch('nope'), WireError)
})
