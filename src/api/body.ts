/**
 * Reads a request body straight from node's stream (no web-stream wrapper on the hot path), refusing at once what is
 * declared too large and stopping as soon as an undeclared body passes the limit. A refused body is never kept: what
 * is still on its way is read and dropped for a moment so that the client, still writing, gets to read the 413 (a
 * socket closed on unread data sends a reset, and the client's stack may throw the answer away with it), then the
 * connection is cut.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { OrchestratorError } from '../errors.ts'
import type { BodyHold } from './body-budget.ts'

/** how long, and how much, a refused body is still read and dropped before the connection is cut */
const LINGER_MS = 1_000
const LINGER_BYTES = 8 * 1024 * 1024

/** Requests that sent `Expect: 100-continue` and have not been told to go on. */
const awaitingContinue = new WeakMap<IncomingMessage, ServerResponse>()

/**
 * The server's `checkContinue` listener: unlike node's default it does not say "100 Continue" at once. The guard and
 * the handler run first; only a body we are going to read is asked for, so a refused or too-large upload is never sent.
 */
export function deferContinue(server: Server) {
  return function checkContinue(req: IncomingMessage, res: ServerResponse): void {
    awaitingContinue.set(req, res)
    server.emit('request', req, res)
  }
}

/**
 * The body's bytes, as read: from `shareFrom` bytes on, joined into shared memory (a large body crosses to the check
 * thread and the account's worker without a copy, and is decoded there: RequestBody in protocol/run-request.ts). With
 * a hold on the body budget (body-budget.ts), its bytes are taken as they arrive (all of a declared length up front)
 * and a body the budget cannot take now is refused with a 529; the caller releases the hold once the body was parsed.
 */
export function readBody(incoming: IncomingMessage, limit: number, idleMs = 15_000, hold?: BodyHold, shareFrom = Number.POSITIVE_INFINITY): Promise<Uint8Array> {
  const declared = Number(incoming.headers['content-length'] ?? -1)
  if (declared > limit) {
    discardRest(incoming)
    return Promise.reject(tooLarge(limit))
  }
  if (hold && declared > 0 && !hold.cover(declared)) {
    discardRest(incoming)
    return Promise.reject(overBudget())
  }
  const pending = awaitingContinue.get(incoming)
  if (pending) {
    awaitingContinue.delete(incoming)
    pending.writeContinue()
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > limit) {
        cleanup()
        discardRest(incoming)
        reject(tooLarge(limit))
        return
      }
      if (hold && !hold.cover(size)) {
        cleanup()
        discardRest(incoming)
        reject(overBudget())
        return
      }
      chunks.push(chunk)
    }
    const onEnd = (): void => {
      cleanup()
      resolve(size >= shareFrom ? shared(chunks, size) : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size))
    }
    const onError = (err: Error): void => {
      cleanup()
      reject(new OrchestratorError('AGYC_CANCELLED', `request body not received: ${err.message}`))
    }
    // a slow-body client: node's requestTimeout bounds the whole request, this bounds each silence within it
    const onIdle = (): void => {
      cleanup()
      discardRest(incoming)
      reject(new OrchestratorError('AGYC_RECEIVE_TIMEOUT', `no request body bytes for ${idleMs} ms`))
    }
    const cleanup = (): void => {
      incoming.off('data', onData)
      incoming.off('end', onEnd)
      incoming.off('error', onError)
      incoming.off('timeout', onIdle)
      incoming.setTimeout(0)
    }
    incoming.on('data', onData)
    incoming.on('end', onEnd)
    incoming.on('error', onError)
    incoming.setTimeout(idleMs, onIdle)
  })
}

/** The chunks joined in shared memory: one copy, as `Buffer.concat` makes. */
function shared(chunks: readonly Buffer[], size: number): Uint8Array {
  const out = new Uint8Array(new SharedArrayBuffer(size))
  let at = 0
  for (const chunk of chunks) {
    out.set(chunk, at)
    at += chunk.length
  }
  return out
}

const discarding = new WeakSet<IncomingMessage>()

/** Reads and drops whatever of the body is still coming, for at most LINGER_MS and LINGER_BYTES, then cuts. */
export function discardRest(incoming: IncomingMessage): void {
  if (incoming.complete || incoming.destroyed || discarding.has(incoming)) return
  discarding.add(incoming)
  let bytes = 0
  const cut = (): void => {
    cleanup()
    incoming.socket?.destroy()
  }
  const timer = setTimeout(cut, LINGER_MS)
  timer.unref()
  const onData = (chunk: Buffer): void => {
    bytes += chunk.length
    if (bytes > LINGER_BYTES) cut()
  }
  const cleanup = (): void => {
    clearTimeout(timer)
    incoming.off('data', onData)
    incoming.off('end', cleanup)
    incoming.off('error', cleanup)
  }
  incoming.on('data', onData)
  incoming.on('end', cleanup)
  incoming.on('error', cleanup)
  incoming.resume()
}

const overBudget = (): OrchestratorError =>
  new OrchestratorError('AGYC_BODY_BUDGET', 'too many large request bodies are being received at once; retry shortly')

const tooLarge = (limit: number): OrchestratorError =>
  new OrchestratorError('AGYC_REQUEST_TOO_LARGE', `request body exceeds the limit of ${limit} bytes`)
