/**
 * Reads a request body straight from node's stream (no web-stream wrapper on the hot path), refusing at once what is
 * declared too large and stopping as soon as an undeclared body passes the limit.
 */
import type { IncomingMessage } from 'node:http'
import { OrchestratorError } from '../errors.ts'

export function readBody(incoming: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(incoming.headers['content-length'] ?? -1)
  if (declared > limit) return Promise.reject(tooLarge(limit))
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > limit) {
        cleanup()
        incoming.resume() // discard the rest without keeping it, so the 413 can still be read by the client
        reject(tooLarge(limit))
        return
      }
      chunks.push(chunk)
    }
    const onEnd = (): void => {
      cleanup()
      resolve(chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks, size).toString('utf8'))
    }
    const onError = (err: Error): void => {
      cleanup()
      reject(new OrchestratorError('AGYC_CANCELLED', `request body not received: ${err.message}`))
    }
    const cleanup = (): void => {
      incoming.off('data', onData)
      incoming.off('end', onEnd)
      incoming.off('error', onError)
    }
    incoming.on('data', onData)
    incoming.on('end', onEnd)
    incoming.on('error', onError)
  })
}

const tooLarge = (limit: number): OrchestratorError =>
  new OrchestratorError('AGYC_REQUEST_TOO_LARGE', `request body exceeds the limit of ${limit} bytes`)
