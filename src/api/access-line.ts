/**
 * The one line a request logs, serialised by hand into the logger's own stream: the same bytes pino writes for
 * `log.info({ reqId, … }, 'request')` (test/api.access-line.test.ts compares them), without pino's generic path. One
 * difference: a lone surrogate in a string is escaped (JSON.stringify), where pino on Node 24 writes it raw and the
 * line's UTF-8 then carries U+FFFD (pino itself switches to JSON.stringify from Node 25).
 * Measured (docs/performance.md, "The `http` kind's cost, and where the latency tail comes from"): pino 5.3–6.0 µs
 * and 2.4 KB allocated a line, by hand 1.7–1.9 µs and 0.7 KB (the write itself not counted); the line was ~16 % of
 * the main thread's allocation per request, and the main thread's scavenges are the latency tail.
 *
 * Only for a plain pino logger: a mixin, a custom time or level format, or a stream that wants pino's metadata
 * (multistream) keep pino's own path. Client strings are JSON-escaped as pino escapes them (a model name cannot
 * forge a line), and the config's `streamWrite` hook (secret scrubbing) runs on the line as pino would run it.
 */
import { pino, type Logger } from 'pino'

export interface AccessFields {
  reqId: string
  account: string | undefined
  strategy: string
  model: string
  stream: boolean
  queueMs: number
  durationMs: number
  attempts: number
  status: number
  code: string | undefined
  /** the tool bridge: the first tool_use_id this request continued on its account's waiting CLI */
  continues?: string | undefined
}

const FIELDS = ['reqId', 'account', 'strategy', 'model', 'stream', 'queueMs', 'durationMs', 'attempts', 'status', 'code', 'continues', 'msg']

type PinoInternals = Record<symbol, unknown>
// msgPrefixSym exists at run time (pino 10) but not in pino's types
const s = pino.symbols

const str = (value: string): string => JSON.stringify(value)
// pino writes a non-finite number as null
const num = (value: number): string => (Number.isFinite(value) ? String(value) : 'null')

/** A function that writes the access line for `log` at level info (or nothing, when info is off). */
export function accessLineWriter(log: Logger): (fields: AccessFields) => void {
  const internals = log as unknown as PinoInternals
  const stream = internals[s.streamSym] as { write(line: string): unknown; [k: symbol]: unknown }
  const levels = internals[s.lsCacheSym] as Record<number, string> | undefined
  const time = internals[s.timeSym] as (() => string) | undefined
  const hooks = internals[s.hooksSym] as { streamWrite?: (line: string) => string; logMethod?: unknown } | undefined
  const serializers = (internals[s.serializersSym] ?? {}) as Record<string, unknown>
  const formatters = internals[s.formattersSym] as { log?: unknown; level?: unknown; bindings?: unknown } | undefined
  const plain = stream && typeof stream.write === 'function' && stream[s.needsMetadataGsym] !== true &&
    internals[s.mixinSym] === undefined && levels?.[30] === '{"level":30' && time === pino.stdTimeFunctions.epochTime &&
    internals[s.messageKeySym] === 'msg' && internals[s.endSym] === '}\n' && internals[(s as unknown as Record<string, symbol>).msgPrefixSym] === undefined &&
    isDefaultLogFormatter(formatters?.log) && hooks?.logMethod === undefined && FIELDS.every((key) => serializers[key] === undefined)
  if (!plain) {
    return (f) => {
      log.info({
        reqId: f.reqId, account: f.account, strategy: f.strategy, model: f.model, stream: f.stream,
        queueMs: f.queueMs, durationMs: f.durationMs, attempts: f.attempts, status: f.status, code: f.code, continues: f.continues,
      }, 'request')
    }
  }
  const streamWrite = hooks?.streamWrite
  // The lines of one event-loop turn reach the stream as one write. pino's destination (sonic-boom) appends each
  // write to its pending buffer and measures that buffer with Buffer.byteLength, which flattens it: while a write is
  // in flight, every line copied the whole backlog again (~3.5 KB allocated per request at c=50, the sampling heap
  // profile). The turn's lines go out in the check phase of the same turn, before the loop polls again.
  let batch = ''
  let scheduled = false
  const flush = (): void => {
    scheduled = false
    unflushed.delete(flush)
    const text = batch
    batch = ''
    if (text !== '') stream.write(text)
  }
  flushSync.set(flush, stream as { flushSync?: () => void })
  hookExit()
  return function writeAccessLine(f: AccessFields): void {
    if (!log.isLevelEnabled('info')) return
    // the child's bindings are read per line: pino keeps them in the logger (setBindings can change them)
    let line = `{"level":30${time()}${internals[s.chindingsSym] as string},"reqId":${str(f.reqId)}`
    if (f.account !== undefined) line += `,"account":${str(f.account)}`
    line += `,"strategy":${str(f.strategy)},"model":${str(f.model)},"stream":${f.stream},"queueMs":${num(f.queueMs)}` +
      `,"durationMs":${num(f.durationMs)},"attempts":${num(f.attempts)},"status":${num(f.status)}`
    if (f.code !== undefined) line += `,"code":${str(f.code)}`
    if (f.continues !== undefined) line += `,"continues":${str(f.continues)}`
    line += ',"msg":"request"}\n'
    batch += streamWrite ? streamWrite(line) : line
    if (!scheduled) {
      scheduled = true
      unflushed.add(flush)
      setImmediate(flush)
    }
  }
}

// A process that exits within a turn still writes that turn's lines: one exit listener for every writer, which
// flushes the writers holding lines (pino's own exit hook has flushed the stream before; this writes and flushes again).
const unflushed = new Set<() => void>()
const flushSync = new WeakMap<() => void, { flushSync?: () => void }>()
let exitHooked = false
function hookExit(): void {
  if (exitHooked) return
  exitHooked = true
  process.on('exit', () => {
    for (const flush of [...unflushed]) {
      const stream = flushSync.get(flush)
      flush()
      try { stream?.flushSync?.() } catch { /* the stream is gone: nothing more can be written */ }
    }
  })
}

/** pino's default `formatters.log` returns its argument; anything else may reshape the fields */
function isDefaultLogFormatter(formatter: unknown): boolean {
  if (typeof formatter !== 'function') return formatter === undefined
  const probe = {}
  return (formatter as (o: object) => object)(probe) === probe
}
