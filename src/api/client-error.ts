/**
 * What node's HTTP parser refuses before any request object exists (headers over `maxHeaderBytes`, a malformed or
 * smuggling-shaped request, a request not received within the timeouts) is answered here, on the raw socket, in the
 * Anthropic error shape, instead of node's bare `HTTP/1.1 431` with no body.
 */
import type { Socket } from 'node:net'
import type { Logger } from 'pino'
import { OrchestratorError, type Code } from '../errors.ts'
import { requestSettled } from '../metrics.ts'
import { errorAnswer, nextRequestId } from './answer.ts'

function codeFor(err: NodeJS.ErrnoException): Code | undefined {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW': return 'AGYC_HEADERS_TOO_LARGE'
    case 'ERR_HTTP_REQUEST_TIMEOUT': return 'AGYC_RECEIVE_TIMEOUT'
    case 'ECONNRESET': return undefined
    default: return err.code?.startsWith('HPE_') ? 'AGYC_INVALID_REQUEST' : undefined
  }
}

const messages: Partial<Record<Code, string>> = {
  AGYC_HEADERS_TOO_LARGE: 'request headers are too large',
  AGYC_RECEIVE_TIMEOUT: 'the request was not received in time',
  AGYC_INVALID_REQUEST: 'malformed HTTP request',
}

/** The server's `clientError` listener; an answer it writes gets its access line and its count, as any other. */
export function createClientErrorHandler(log: Logger) {
  return function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    const code = codeFor(err)
    // as node's own handler: answer only if no response of this connection has started (a pipelined one might have)
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage
    if (code !== undefined && socket.writable && !inFlight?.headersSent) {
      const requestId = nextRequestId()
      const { status, headers, body } = errorAnswer(new OrchestratorError(code, messages[code]!), requestId, undefined, { headers: { connection: 'close' } })
      let head = `HTTP/1.1 ${status} ${reason[status] ?? 'Error'}\r\n`
      for (const name in headers) head += `${name}: ${headers[name]}\r\n`
      socket.end(`${head}\r\n${body}`)
      // no request object exists, so no start time: the duration is left out rather than made up
      requestSettled(undefined, status, '', code, undefined, undefined, 0)
      log.info({ reqId: requestId, status, code, parseError: err.code }, 'request')
    }
    socket.destroySoon()
  }
}

const reason: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' }
