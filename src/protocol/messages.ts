/**
 * Every message that crosses between the main thread and an account worker, as zod unions tagged by `kind`, parsed
 * once where they arrive. The data path sends arrays: everything bound for one side in one event-loop turn travels
 * as one message, because the cost of a thread hop is per message and per wake-up, not per byte
 * (docs/performance.md, "What the thread hop costs, and why").
 */
import { z } from 'zod'
import { codeNames, type Code } from '../errors.ts'
import { RUN_FIELDS, RUN_KEYS, type RunRequest } from './run-request.ts'

const CodeSchema = z.enum(codeNames as [Code, ...Code[]])

// ── main → worker, on the account's data port ─────────────────────────────────────────────────────────────────────
const fieldSchemas = {
  string: z.string(), 'string?': z.string().optional(), number: z.number(), boolean: z.boolean(), 'boolean?': z.boolean().optional(),
  body: z.union([z.string(), z.instanceof(Uint8Array)]),
}

/**
 * `run`: a per-account sequence number (the main thread finds the request by it) and the request's fields, checked as
 * run-request.ts declares them. The data path never parses it (tuples.ts checks the flat form); the tests hold the
 * flat checks to this schema.
 */
export const RunCommand = z.object({
  kind: z.literal('run'),
  id: z.number(),
  ...(Object.fromEntries(RUN_KEYS.map((key) => [key, fieldSchemas[RUN_FIELDS[key]]])) as Record<string, z.ZodType>),
})
export type RunCommand = { kind: 'run'; id: number } & RunRequest
const CancelCommand = z.object({ kind: z.literal('cancel'), id: z.number() })
/**
 * Flow control, by credit: the main thread acknowledges how much of a request's stream (in characters) the client's
 * socket took; the worker sends at most a window beyond that, then holds the rest (bounded) and stops reading its
 * session. A client that stops reading thus stops its request's producer, with one message per half window.
 */
const AckCommand = z.object({ kind: z.literal('ack'), id: z.number(), taken: z.number() })

export const ToWorker = z.discriminatedUnion('kind', [RunCommand, CancelCommand, AckCommand])
export type ToWorker = RunCommand | z.infer<typeof CancelCommand> | z.infer<typeof AckCommand>
export const ToWorkerBatch = z.array(ToWorker)

// ── worker → main, on the same port ───────────────────────────────────────────────────────────────────────────────
export const Usage = z.object({ input_tokens: z.number(), output_tokens: z.number() }).loose()
export type Usage = z.infer<typeof Usage>

export const Heartbeat = z.object({
  kind: z.literal('heartbeat'),
  at: z.number(),
  /** requests running in the session, and waiting in the worker for a slot */
  running: z.number(),
  queued: z.number(),
  /** most requests ever running at once: the concurrency limit, measured where it is enforced */
  peakRunning: z.number(),
  /** how late the heartbeat timer fired: the worker's event-loop delay */
  loopDelayMs: z.number(),
  childPid: z.number().optional(),
  childAlive: z.boolean().optional(),
  restarts: z.number(),
  lastError: z.string().optional(),
})
export type Heartbeat = z.infer<typeof Heartbeat>

export const FromWorker = z.discriminatedUnion('kind', [
  /** the session started and takes requests */
  z.object({ kind: z.literal('ready') }),
  /** pre-framed SSE bytes of a streamed answer, everything the request produced in one turn */
  z.object({ kind: z.literal('chunk'), id: z.number(), text: z.string() }),
  /** the answer is complete; `body` is the whole JSON message for a non-streamed request */
  z.object({
    kind: z.literal('done'), id: z.number(), body: z.string().optional(), usage: Usage, model: z.string(),
    /** tool_use ids a live CLI of this account now waits on (the tool bridge): the client's results come back here */
    parked: z.array(z.string()).optional(),
  }),
  /** parked tool calls that ended without the client's result (deadline, CLI gone, shutdown): their slot is free */
  z.object({ kind: z.literal('unparked'), ids: z.array(z.string()) }),
  z.object({
    kind: z.literal('failed'), id: z.number(), code: CodeSchema, message: z.string(),
    retryAfterS: z.number().optional(),
  }),
  Heartbeat,
  /** the session's long-lived upstream (stdio child, local server) stopped or started serving */
  z.object({ kind: z.literal('session'), up: z.boolean(), state: z.string(), reason: z.string().optional() }),
  /** a child process was spawned or reaped: the main thread kills recorded groups if the worker dies */
  z.object({ kind: z.literal('child'), pid: z.number(), alive: z.boolean() }),
  z.object({ kind: z.literal('log'), level: z.enum(['debug', 'info', 'warn', 'error']), msg: z.string(), fields: z.record(z.string(), z.unknown()).optional() }),
])
export type FromWorker = z.infer<typeof FromWorker>
export const FromWorkerBatch = z.array(FromWorker)

// ── control plane (comlink) ───────────────────────────────────────────────────────────────────────────────────────
export const WorkerStats = z.object({
  threadId: z.number(),
  running: z.number(),
  queued: z.number(),
  peakRunning: z.number(),
  served: z.number(),
  failed: z.number(),
  cancelled: z.number(),
  /** the isolate's young generation now, and the thread's limit for it (worker-link.ts) */
  youngGenerationMb: z.number(),
  youngGenerationLimitMb: z.number(),
})
export type WorkerStats = z.infer<typeof WorkerStats>

export interface ControlApi {
  stats(): WorkerStats
  /** resolves once nothing runs or waits in the worker */
  drain(): Promise<void>
  /**
   * takes a `failed` session out of that state (its child starts afresh); false when the session cannot (it was
   * decided for good when built, e.g. a CLI not installed): the main thread then gives the account a fresh worker
   */
  reset(): boolean
  /** stops the session (and its child) and ends the worker's attach task */
  stop(): Promise<void>
}

// kept apart from zod, for the workers
export { assertNever } from './assert-never.ts'
