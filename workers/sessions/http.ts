/**
 * `http`: forwards to an Anthropic-compatible upstream over one keep-alive undici Pool per account. Keys and headers
 * come from environment variables named in the config, resolved here at start and never logged. A streamed answer is
 * passed through as the upstream framed it (tool_use blocks included), chunk by chunk, never buffered whole; errors
 * before the first byte keep the upstream's meaning (429 with its retry-after, 529, 4xx). Redirects are never
 * followed: undici's Pool does not, and a redirect could carry the account's key elsewhere. With `start`, the worker
 * also launches and supervises the account's own local server and waits for its readiness URL.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { TextDecoder } from 'node:util'
import { Pool, request, type Dispatcher } from 'undici'
import { OrchestratorError } from '../../src/errors.ts'
import { estimateInputTokens } from '../../src/protocol/anthropic.ts'
import type { Usage } from '../../src/protocol/messages.ts'
import { bodyText } from '../../src/protocol/run-request.ts'
import { Answer } from './answer.ts'
import { SseScan } from './sse-scan.ts'
import { ChatChunksToAnthropic, chatToMessage, messagesToChat } from '../../src/formats/openai-upstream.ts'
import { resolveEnvValue } from '../../src/config/child-env.ts'
import { createLauncher, type Child } from './process/child.ts'
import { Supervisor } from './process/supervisor.ts'
import type { Completion, Session, SessionContext, SessionOutput, SessionRequest } from './types.ts'
import { fromAnthropicError, fromHttpStatus, parseRetryAfter } from './upstream-errors.ts'

type HttpConfig = Extract<SessionContext['account']['session'], { kind: 'http' }>

/** an error answer's body is read up to this much: enough for the upstream's message, bounded against a flood */
const ERROR_BODY_LIMIT = 64 * 1024

export function createHttpSession(context: SessionContext): Session {
  const { account } = context
  const config = account.session as HttpConfig
  const base = new URL(config.baseUrl)
  // an OpenAI-compatible upstream's base URL carries its version (`…/v1`), as its SDKs expect; an Anthropic one does not
  const chat = config.dialect === 'openai-chat'
  const path = `${base.pathname.replace(/\/+$/, '')}${chat ? '/chat/completions' : '/v1/messages'}`
  let pool: Pool
  let headers: Record<string, string>
  let supervisor: Supervisor | undefined
  // the main thread sends the model this account runs (its `models`/`aliases` may rename the client's); without either
  // the client's own body already names it, and its bytes can go to the upstream as they came
  const rewritesModel = account.models !== undefined || account.aliases !== undefined

  function buildHeaders(): Record<string, string> {
    const out: Record<string, string> = chat ? { 'content-type': 'application/json' } : { 'content-type': 'application/json', 'anthropic-version': config.anthropicVersion }
    for (const [name, value] of Object.entries(config.headers)) out[name.toLowerCase()] = resolveEnvValue(value, `headers.${name}`, account.stateDir)
    // OpenAI's APIs take the key as a bearer token
    if (config.apiKey) out[chat ? 'authorization' : 'x-api-key'] = `${chat ? 'Bearer ' : ''}${resolveEnvValue(config.apiKey, 'apiKey', account.stateDir)}`
    if (config.authToken) out.authorization = `Bearer ${resolveEnvValue(config.authToken, 'authToken', account.stateDir)}`
    return out
  }

  /** polls the readiness URL until it answers 2xx; the supervisor races this against the server's exit */
  async function serverReady(child: Child, readyUrl: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    let last = 'no answer'
    while (Date.now() < deadline && !child.exited) {
      try {
        const res = await request(readyUrl, { method: 'GET', headersTimeout: 1_000, bodyTimeout: 1_000 })
        await res.body.dump()
        if (res.statusCode >= 200 && res.statusCode < 300) return
        last = `status ${res.statusCode}`
      } catch (err) {
        last = (err as { code?: string }).code ?? (err as Error).message
      }
      await sleep(100)
    }
    throw new Error(`${readyUrl} not ready within ${timeoutMs} ms (${last})`)
  }

  /** the client's beta list and version go through unchanged (a gateway must not drop them); the rest is the account's */
  function forwarded(req: SessionRequest): Record<string, string> {
    if (chat || (req.anthropicBeta === undefined && req.anthropicVersion === undefined)) return headers
    const out = { ...headers }
    if (req.anthropicVersion !== undefined) out['anthropic-version'] = req.anthropicVersion
    if (req.anthropicBeta !== undefined) out['anthropic-beta'] = req.anthropicBeta
    return out
  }

  async function run(req: SessionRequest, out: SessionOutput): Promise<Completion> {
    if (supervisor && supervisor.state !== 'up') {
      const why = supervisor.lastError ? ` (${supervisor.lastError})` : ''
      throw new OrchestratorError('AGYC_UPSTREAM_FAILED', `the account's local server is ${supervisor.state}${why}`)
    }
    if (req.signal.aborted) throw new OrchestratorError('AGYC_CANCELLED', 'the request was cancelled')
    const call = new UpstreamCall(req, out, chat)
    const body = chat ? JSON.stringify(messagesToChat(req.request, req.model, req.stream)) : upstreamBody(req, rewritesModel)
    pool.dispatch({ path, method: 'POST', headers: forwarded(req), body }, call)
    return call.promise
  }

  return {
    async start() {
      headers = buildHeaders()
      pool = new Pool(base.origin, {
        connections: config.connections ?? account.maxConcurrency,
        connectTimeout: config.connectTimeoutMs,
        headersTimeout: config.headersTimeoutMs,
        bodyTimeout: config.bodyTimeoutMs,
        keepAliveTimeout: 30_000,
      })
      const start = config.start
      if (start) {
        const launcher = createLauncher(context, start)
        const args = start.args.map((a) => a.replaceAll('{stateDir}', launcher.stateDir))
        const readyUrl = start.readyUrl ?? config.baseUrl
        supervisor = new Supervisor(context, launcher, args, start.restart, {
          ready: (child) => serverReady(child, readyUrl, start.readyTimeoutMs),
          exited: () => {},
        }, 'http upstream server')
        await supervisor.start()
      }
    },
    run,
    async stop() {
      await pool?.destroy()
      await supervisor?.stop()
    },
    reset() {
      supervisor?.reset()
    },
    get child() {
      return supervisor?.info
    },
  }
}

/**
 * The upstream's body: the client's request with the account's model and an explicit `stream`. The client's own bytes
 * say exactly that when the model is not renamed and `stream` is either `true` (the main thread checked it) or absent
 * (then `,"stream":false` closes the object); anything else is parsed and serialised again. Forwarding the bytes
 * spares the worker a parse and a serialisation of what can be a body of hundreds of KB (Claude Code's requests).
 */
export function upstreamBody(req: Pick<SessionRequest, 'body' | 'request' | 'model' | 'stream'>, rewritesModel: boolean): string {
  if (!rewritesModel) {
    const body = bodyText(req.body)
    if (req.stream) return body
    // a "stream" anywhere (a key, or the word as a string value) is left to the parse: the bytes are kept only when
    // the key is certainly absent (inside a JSON string the quotes would be escaped)
    if (!body.includes('"stream"')) {
      const end = body.lastIndexOf('}')
      if (end > 0) return `${body.slice(0, end)},"stream":false}`
    }
  }
  return JSON.stringify({ ...req.request, model: req.model, stream: req.stream })
}

function transportError(err: unknown, signal: AbortSignal): OrchestratorError {
  if (signal.aborted) return new OrchestratorError('AGYC_CANCELLED', 'the request was cancelled')
  const code = (err as { code?: string }).code ?? ''
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new OrchestratorError('AGYC_UPSTREAM_TIMEOUT', `upstream timed out (${code})`)
  }
  return new OrchestratorError('AGYC_UPSTREAM_FAILED', `upstream request failed: ${code || (err as Error).message}`)
}

type Mode = 'whole' | 'stream' | 'error'

/**
 * One request to the upstream, as undici's own dispatch handler: the answer's bytes arrive here as they are read, with
 * no body stream, no async iteration and no abort wiring of undici's `request()` in between (measured: ~70 → ~43 µs of
 * client CPU a request on this machine kind, bench note in README "What the thread hop costs"). It is also the abort
 * signal's listener (`handleEvent`), so a request costs no closure but its promise's.
 */
class UpstreamCall implements Dispatcher.DispatchHandler {
  readonly promise: Promise<Completion>
  readonly #req: SessionRequest
  readonly #out: SessionOutput
  #resolve!: (completion: Completion) => void
  #reject!: (err: unknown) => void
  #controller: Dispatcher.DispatchController | undefined
  #settled = false
  #mode: Mode = 'whole'
  #status = 0
  #retryAfter: number | undefined
  /** a whole answer's bytes */
  #chunks: Buffer[] = []
  /** an error answer's text, up to ERROR_BODY_LIMIT */
  #text = ''
  #decoder: TextDecoder | undefined
  #scan: SseScan | undefined
  /** an OpenAI-compatible upstream: its chunks become Anthropic events before anything reads them */
  readonly #chat: ChatChunksToAnthropic | undefined

  constructor(req: SessionRequest, out: SessionOutput, chat: boolean) {
    this.#req = req
    this.#out = out
    this.#chat = chat ? new ChatChunksToAnthropic() : undefined
    this.promise = new Promise<Completion>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    req.signal.addEventListener('abort', this, { once: true })
  }

  /** the request's abort signal fired: the upstream request goes too (its error settles this call as cancelled) */
  handleEvent(): void {
    this.#controller?.abort(new OrchestratorError('AGYC_CANCELLED', 'the request was cancelled'))
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    if (this.#req.signal.aborted) this.handleEvent()
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    this.#status = statusCode
    if (statusCode !== 200) {
      this.#mode = 'error'
      this.#retryAfter = parseRetryAfter(headers['retry-after'])
      this.#decoder = new TextDecoder()
      return
    }
    if (!this.#req.stream) return
    const type = String(headers['content-type'] ?? '')
    if (!type.startsWith('text/event-stream')) {
      this.#fail(new OrchestratorError('AGYC_UPSTREAM_FAILED', `upstream answered a streamed request with content-type "${type}"`))
      controller.abort(new Error('not an event stream'))
      return
    }
    this.#mode = 'stream'
    this.#decoder = new TextDecoder()
    this.#scan = new SseScan()
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#settled) return
    switch (this.#mode) {
      case 'whole':
        this.#chunks.push(chunk)
        return
      case 'stream': {
        // whole events go through as they complete (a chunk's unfinished event waits for its end, never the whole
        // answer): an upstream `error` event is held back and becomes this request's failure, so that the account's
        // health sees a failure (or a throttle), a failure before any answer byte can still move to another account,
        // and the client gets exactly one error event, ours, in the Anthropic shape
        const scan = this.#scan!
        let events: string
        try {
          const text = this.#decoder!.decode(chunk, { stream: true })
          events = scan.push(this.#chat ? this.#chat.push(text) : text)
        } catch (err) {
          this.#fail(transportError(err, this.#req.signal))
          controller.abort(err as Error)
          return
        }
        if (events && !this.#out.raw(events)) {
          // the client is not reading: stop reading the upstream until it does (TCP pushes back on the upstream)
          controller.pause()
          void this.#out.drained().then(() => controller.resume())
        }
        if (scan.failure) {
          this.#fail(scan.failure)
          controller.abort(new Error('upstream error event'))
        }
        return
      }
      case 'error':
        this.#text += this.#decoder!.decode(chunk, { stream: true })
        // bounded against a flood: what we have is enough for the message
        if (this.#text.length >= ERROR_BODY_LIMIT) {
          this.#fail(this.#upstreamError())
          controller.abort(new Error('error body over the limit'))
        }
        return
    }
  }

  onResponseEnd(): void {
    if (this.#settled) return
    try {
      switch (this.#mode) {
        case 'whole':
          this.#done(this.#whole())
          return
        case 'stream':
          this.#done(this.#streamed())
          return
        case 'error':
          this.#fail(this.#upstreamError())
          return
      }
    } catch (err) {
      this.#fail(err instanceof OrchestratorError ? err : transportError(err, this.#req.signal))
    }
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.#settled) return
    // an error answer cut short still says what the upstream meant
    this.#fail(this.#mode === 'error' && !this.#req.signal.aborted ? this.#upstreamError() : transportError(err, this.#req.signal))
  }

  #upstreamError(): OrchestratorError {
    return fromHttpStatus(this.#status, this.#text.slice(0, ERROR_BODY_LIMIT), this.#retryAfter, 'upstream')
  }

  #whole(): Completion {
    const chunks = this.#chunks
    const text = chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8')
    let message: unknown
    try {
      message = JSON.parse(text)
    } catch {
      throw new OrchestratorError('AGYC_UPSTREAM_FAILED', `upstream answered 200 with a body that is not JSON: ${JSON.stringify(text.slice(0, 200))}`)
    }
    // a 200 carrying an error body is the upstream's failure, as a status would be
    if ((message as { type?: unknown } | null)?.type === 'error') throw fromAnthropicError((message as { error?: unknown }).error, 'upstream')
    if (this.#chat) {
      if (typeof message !== 'object' || message === null || 'error' in message) throw fromAnthropicError((message as { error?: unknown } | null)?.error, 'upstream')
      message = chatToMessage(message as Record<string, unknown>)
    }
    const req = this.#req
    return new Answer(this.#out, 'upstream', () => estimateInputTokens(req.request)).message(message)
  }

  #streamed(): Completion {
    const scan = this.#scan!
    const last = this.#decoder!.decode()
    const rest = scan.push(this.#chat ? this.#chat.push(last) + this.#chat.end() : `${last}\n\n`) // a last event without its blank line
    if (rest) this.#out.raw(rest)
    if (scan.failure) throw scan.failure
    if (!scan.stopped) throw new OrchestratorError('AGYC_UPSTREAM_FAILED', 'upstream stream ended before message_stop')
    return {
      content: [],
      stopReason: scan.stopReason,
      usage: scan.usage,
      ...(scan.model ? { model: scan.model } : {}),
    }
  }

  #done(completion: Completion): void {
    this.#settled = true
    this.#req.signal.removeEventListener('abort', this)
    this.#resolve(completion)
  }

  #fail(err: OrchestratorError): void {
    if (this.#settled) return
    this.#settled = true
    this.#req.signal.removeEventListener('abort', this)
    this.#reject(err)
  }
}
