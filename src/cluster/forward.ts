/**
 * One forwarding hop (issue 17): a request this node took is sent on to the node that should serve it, signed with
 * the cluster secret, and its answer streamed back as it comes (SSE included), under the request's own deadline; the
 * client going away cancels the hop, which the serving node sees as its client going away. undici, not fetch: its
 * `request` gives the body as a node stream we pause when the client's socket is full (back-pressure end to end).
 *
 * What the client gets when the hop fails, never a hang:
 * - the peer refused the connection or did not accept it in time: nothing reached it, so the caller serves the request
 *   here instead (`unreachable`: a node killed a moment ago is still in the membership list for a heartbeat or two);
 *   the same when it answered with a status the caller says means "took nothing on" (`declined`: 503, 529);
 * - the peer died or the connection broke before its answer began: 502 AGYC_PEER_FAILED in the error shape;
 * - after the answer began: an SSE `error` event and the end of the stream (a JSON answer is cut: it cannot be mended);
 * - the deadline passed: 504 AGYC_REQUEST_TIMEOUT, or the same `error` event mid-stream.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import { Agent, request } from 'undici'
import { OrchestratorError, codes, type Code } from '../errors.ts'
import { sendError, type ErrorShape } from '../api/answer.ts'
import { clusterHeaders } from './auth.ts'
import type { RequestBody } from '../protocol/run-request.ts'

/** Never copied from one hop to the next (RFC 9110 §7.6.1), plus what undici sets itself and the cluster's own headers. */
const DROPPED = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'host', 'content-length', 'expect', 'http2-settings',
  clusterHeaders.node, clusterHeaders.timestamp, clusterHeaders.signature,
])

/** The response header naming the node that served a forwarded request. */
export const SERVED_BY = 'x-agyc-node'

export type HopOutcome = 'answered' | 'unreachable' | 'declined' | 'failed' | 'timeout' | 'cancelled'

export interface Hop {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  /** the client's body, as read */
  readonly body: RequestBody
  /** the door's error shape (Anthropic's, OpenAI's) */
  readonly errors: ErrorShape
  readonly requestId: string
  /** the peer's origin and node id */
  readonly url: string
  readonly nodeId: string
  /** the cluster signature headers (Fleet.sign) */
  readonly signed: Record<string, string>
  /** epoch ms: the request's deadline (its arrival + dispatcher.requestTimeoutMs) */
  readonly deadline: number
  /** statuses that mean the peer took nothing on: not written to the client, the caller serves it (`declined`) */
  readonly declines?: ReadonlySet<number>
}

export interface HopResult { outcome: HopOutcome; status: number; code?: Code | undefined }

const UNREACHABLE = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'])

const ignore = (): void => {}

function errorCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | undefined
  const code = e?.code ?? e?.cause?.code
  return typeof code === 'string' ? code : undefined
}

function copyHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const name in headers) {
    const value = headers[name]
    if (value !== undefined && !DROPPED.has(name)) out[name] = value
  }
  return out
}

export class Forwarder {
  readonly #agent: Agent

  constructor(options: { connectTimeoutMs?: number; connections?: number } = {}) {
    // keep-alive connections to each peer: a hop costs no handshake; a short connect timeout makes a dead peer an
    // `unreachable` (served here) in a second or two rather than a client waiting
    this.#agent = new Agent({
      connections: options.connections ?? 256,
      keepAliveTimeout: 30_000,
      connect: { timeout: options.connectTimeoutMs ?? 2_000 },
    })
  }

  async forward(hop: Hop): Promise<HopResult> {
    const { req, res } = hop
    const controller = new AbortController()
    let why: 'timeout' | 'cancelled' | undefined
    const onClose = (): void => {
      if (res.writableFinished) return
      why ??= 'cancelled'
      controller.abort()
    }
    res.once('close', onClose)
    const timer = setTimeout(() => { why ??= 'timeout'; controller.abort() }, Math.max(1, hop.deadline - Date.now()))
    try {
      const answer = await request(`${hop.url}${req.url ?? '/'}`, {
        method: 'POST',
        headers: { ...copyHeaders(req.headers), ...hop.signed, 'content-type': 'application/json' },
        // a large body's shared bytes are copied out once: a socket writes memory it owns
        body: typeof hop.body === 'string' ? hop.body : Buffer.from(hop.body),
        signal: controller.signal,
        dispatcher: this.#agent,
        // the deadline above bounds the hop; undici's own would cut a long answer at 300 s
        headersTimeout: 0,
        bodyTimeout: 0,
      })
      // the client may leave (or the deadline pass) at any moment from now on: undici then destroys the body with an
      // abort error, which must find a listener (an unhandled 'error' would end the process)
      answer.body.on('error', ignore)
      const headers: Record<string, string | string[]> = {}
      for (const name in answer.headers) {
        const value = answer.headers[name]
        if (value !== undefined && !DROPPED.has(name)) headers[name] = value
      }
      headers[SERVED_BY] = hop.nodeId
      if (hop.declines?.has(answer.statusCode) && !res.destroyed) {
        answer.body.resume() // read to its end: the connection goes back to the pool

        return { outcome: 'declined', status: answer.statusCode }
      }
      if (res.destroyed) {
        answer.body.destroy()
        return { outcome: 'cancelled', status: 499, code: 'AGYC_CANCELLED' }
      }
      res.writeHead(answer.statusCode, headers)
      const sse = String(answer.headers['content-type'] ?? '').startsWith('text/event-stream')
      return await this.#pipe(answer.body, res, sse, () => why, answer.statusCode, hop.errors)
    } catch (err) {
      if (why === 'cancelled' || res.destroyed) return { outcome: 'cancelled', status: 499, code: 'AGYC_CANCELLED' }
      if (why === undefined && UNREACHABLE.has(errorCode(err) ?? '')) return { outcome: 'unreachable', status: 0 }
      const error = why === 'timeout'
        ? new OrchestratorError('AGYC_REQUEST_TIMEOUT', 'the request took longer than its deadline on the node serving it')
        : new OrchestratorError('AGYC_PEER_FAILED', `node "${hop.nodeId}" failed before answering (${errorCode(err) ?? (err as Error).message})`)
      if (!res.headersSent) sendError(res, hop.requestId, error, undefined, hop.errors)
      else res.destroy()
      return { outcome: why === 'timeout' ? 'timeout' : 'failed', status: codes[error.code].status, code: error.code }
    } finally {
      clearTimeout(timer)
      res.off('close', onClose)
    }
  }

  /** The answer's body to the client, chunk by chunk, pausing while the client's socket is full. */
  #pipe(body: NodeJS.ReadableStream & { destroy(): void }, res: ServerResponse, sse: boolean, why: () => 'timeout' | 'cancelled' | undefined,
    status: number, errors: ErrorShape): Promise<HopResult> {
    return new Promise((resolve) => {
      const resume = (): void => { body.resume() }
      body.on('data', (chunk: Buffer) => {
        if (!res.write(chunk)) {
          body.pause()
          res.once('drain', resume)
        }
      })
      body.once('end', () => {
        res.end()
        resolve({ outcome: 'answered', status })
      })
      body.on('error', (err: unknown) => {
        res.off('drain', resume)
        if (why() === 'cancelled' || res.destroyed || res.writableEnded) {
          resolve({ outcome: 'cancelled', status: 499, code: 'AGYC_CANCELLED' })
          return
        }
        const error = why() === 'timeout'
          ? new OrchestratorError('AGYC_REQUEST_TIMEOUT', 'the request took longer than its deadline on the node serving it')
          : new OrchestratorError('AGYC_PEER_FAILED', `the node serving the request failed mid-answer (${errorCode(err) ?? (err as Error).message})`)
        // a stream under way ends with an error event, as a local one does (Exchange.fail); a JSON body cannot be mended
        if (sse) res.end(errors.streamEvent(error))
        else res.destroy()
        resolve({ outcome: why() === 'timeout' ? 'timeout' : 'failed', status, code: error.code })
      })
    })
  }

  async close(): Promise<void> {
    await this.#agent.close().catch(() => {})
  }
}
