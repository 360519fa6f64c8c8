/**
 * `http`: forwards to an Anthropic-compatible upstream over one keep-alive undici Pool per account. Keys and headers
 * come from environment variables named in the config, resolved here at start and never logged. A streamed answer is
 * passed through as the upstream framed it (tool_use blocks included), chunk by chunk, never buffered whole; errors
 * before the first byte keep the upstream's meaning (429 with its retry-after, 529, 4xx). Redirects are never
 * followed: undici's Pool does not, and a redirect could carry the account's key elsewhere. With `start`, the worker
 * also launches and supervises the account's own local server and waits for its readiness URL.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Pool, request } from 'undici'
import { OrchestratorError } from '../../src/errors.ts'
import { estimateInputTokens } from '../../src/protocol/anthropic.ts'
import type { Usage } from '../../src/protocol/messages.ts'
import { Answer, LineSplitter } from './answer.ts'
import { createLauncher, resolveEnvValue, type Child } from './child.ts'
import { Supervisor } from './supervisor.ts'
import type { Completion, Session, SessionContext, SessionOutput, SessionRequest } from './types.ts'
import { fromAnthropicError, fromHttpStatus, parseRetryAfter } from './upstream-errors.ts'

type HttpConfig = Extract<SessionContext['account']['session'], { kind: 'http' }>

/** an error answer's body is read up to this much: enough for the upstream's message, bounded against a flood */
const ERROR_BODY_LIMIT = 64 * 1024
/** one SSE event of a streamed answer is held until it is complete: at most this many characters */
const EVENT_LIMIT = 16 * 1024 * 1024

export function createHttpSession(context: SessionContext): Session {
  const { account } = context
  const config = account.session as HttpConfig
  const base = new URL(config.baseUrl)
  const path = `${base.pathname.replace(/\/+$/, '')}/v1/messages`
  let pool: Pool
  let headers: Record<string, string>
  let supervisor: Supervisor | undefined

  function buildHeaders(): Record<string, string> {
    const out: Record<string, string> = { 'content-type': 'application/json', 'anthropic-version': config.anthropicVersion }
    for (const [name, value] of Object.entries(config.headers)) out[name.toLowerCase()] = resolveEnvValue(value, `headers.${name}`, account.stateDir)
    if (config.apiKey) out['x-api-key'] = resolveEnvValue(config.apiKey, 'apiKey', account.stateDir)
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
    if (req.anthropicBeta === undefined && req.anthropicVersion === undefined) return headers
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
    const body = JSON.stringify({ ...req.request, model: req.model, stream: req.stream })
    let res: Awaited<ReturnType<Pool['request']>>
    try {
      res = await pool.request({ path, method: 'POST', headers: forwarded(req), body, signal: req.signal })
    } catch (err) {
      throw transportError(err, req.signal)
    }
    if (res.statusCode !== 200) {
      const text = await readBounded(res.body, ERROR_BODY_LIMIT)
      throw fromHttpStatus(res.statusCode, text, parseRetryAfter(res.headers['retry-after']), 'upstream')
    }
    try {
      return req.stream ? await passThrough(res, out) : await whole(res, req, out)
    } catch (err) {
      throw err instanceof OrchestratorError ? err : transportError(err, req.signal)
    }
  }

  async function whole(res: Awaited<ReturnType<Pool['request']>>, req: SessionRequest, out: SessionOutput): Promise<Completion> {
    const text = await res.body.text()
    let message: unknown
    try {
      message = JSON.parse(text)
    } catch {
      throw new OrchestratorError('AGYC_UPSTREAM_FAILED', `upstream answered 200 with a body that is not JSON: ${JSON.stringify(text.slice(0, 200))}`)
    }
    if ((message as { type?: unknown } | null)?.type === 'error') throw fromAnthropicError((message as { error?: unknown }).error, 'upstream')
    return new Answer(out, 'upstream', estimateInputTokens(req.request)).message(message)
  }

  async function passThrough(res: Awaited<ReturnType<Pool['request']>>, out: SessionOutput): Promise<Completion> {
    const type = String(res.headers['content-type'] ?? '')
    if (!type.startsWith('text/event-stream')) {
      await res.body.dump()
      throw new OrchestratorError('AGYC_UPSTREAM_FAILED', `upstream answered a streamed request with content-type "${type}"`)
    }
    const decoder = new TextDecoder()
    const scan = new SseScan()
    // whole events go through as they complete (a chunk's unfinished event waits for its end, never the whole answer):
    // an upstream `error` event is held back and becomes this request's failure, so that the account's health sees a
    // failure (or a throttle), a failure before any answer byte can still move to another account, and the client
    // gets exactly one error event, ours, in the Anthropic shape
    for await (const chunk of res.body) {
      const events = scan.push(decoder.decode(chunk as Buffer, { stream: true }))
      if (events) out.raw(events)
      if (scan.failure) throw scan.failure
    }
    const rest = scan.push(`${decoder.decode()}\n\n`) // a last event without its blank line
    if (rest) out.raw(rest)
    if (scan.failure) throw scan.failure
    if (!scan.stopped) throw new OrchestratorError('AGYC_UPSTREAM_FAILED', 'upstream stream ended before message_stop')
    return {
      content: [],
      stopReason: scan.stopReason,
      usage: scan.usage,
      ...(scan.model ? { model: scan.model } : {}),
    }
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

function transportError(err: unknown, signal: AbortSignal): OrchestratorError {
  if (signal.aborted) return new OrchestratorError('AGYC_CANCELLED', 'the request was cancelled')
  const code = (err as { code?: string }).code ?? ''
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new OrchestratorError('AGYC_UPSTREAM_TIMEOUT', `upstream timed out (${code})`)
  }
  return new OrchestratorError('AGYC_UPSTREAM_FAILED', `upstream request failed: ${code || (err as Error).message}`)
}

async function readBounded(body: AsyncIterable<unknown> & { destroy(): void }, limit: number): Promise<string> {
  let text = ''
  const decoder = new TextDecoder()
  try {
    for await (const chunk of body) {
      text += decoder.decode(chunk as Buffer, { stream: true })
      if (text.length >= limit) break
    }
  } catch { /* what we have is enough for the message */ }
  body.destroy()
  return text.slice(0, limit)
}

/**
 * Cuts a passing Anthropic event stream into whole events and watches it for what the main thread needs at the end
 * (usage, stop reason, model) without holding the stream: only `message_*` and `error` data lines are parsed. An
 * `error` event is not passed on: it ends the scan as `failure`, our error.
 */
class SseScan {
  stopped = false
  stopReason = 'end_turn'
  model: string | undefined
  usage: Usage = { input_tokens: 0, output_tokens: 0 }
  /** the upstream's error event, as ours: nothing after it is passed on */
  failure: OrchestratorError | undefined
  readonly #lines = new LineSplitter(EVENT_LIMIT)
  /** the lines of the event under way, and their length: one event is bounded like one line */
  #event: string[] = []
  #eventChars = 0
  #error = false

  /** the events `text` completed, as SSE text to pass on ('' when none), up to an error event (then `failure`) */
  push(text: string): string {
    let out = ''
    if (this.failure) return out
    for (const raw of this.#lines.push(text)) {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw
      if (line !== '') {
        this.#event.push(line)
        this.#eventChars += line.length
        if (this.#eventChars > EVENT_LIMIT) {
          this.failure = new OrchestratorError('AGYC_UPSTREAM_FAILED', `upstream sent an event longer than ${EVENT_LIMIT} characters`)
          return out
        }
        if (line.startsWith('event:') && line.slice(6).trim() === 'error') this.#error = true
        continue
      }
      if (this.#event.length === 0) continue
      const event = this.#event
      this.#event = []
      this.#eventChars = 0
      if (this.#error) this.#fail(event)
      else for (const l of event) if (l.startsWith('data:') && (l.includes('"message_') || l.includes('"error"'))) this.#data(l, event)
      if (this.failure) return out
      out += `${event.join('\n')}\n\n`
    }
    return out
  }

  #data(line: string, event: string[]): void {
    let data: { type?: string; message?: { model?: string; usage?: Usage }; delta?: { stop_reason?: string }; usage?: Partial<Usage> }
    try { data = JSON.parse(line.slice(5)) as typeof data } catch { return }
    if (data.type === 'message_start') {
      this.model = data.message?.model
      if (data.message?.usage) this.usage = { ...data.message.usage }
    } else if (data.type === 'message_delta') {
      if (data.delta?.stop_reason) this.stopReason = data.delta.stop_reason
      if (data.usage) this.usage = { ...this.usage, ...data.usage } as Usage
    } else if (data.type === 'message_stop') {
      this.stopped = true
    } else if (data.type === 'error') {
      this.#fail(event) // an error in the data of an event not named so
    }
  }

  #fail(event: string[]): void {
    const data = event.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n')
    let error: unknown
    try { error = (JSON.parse(data) as { error?: unknown }).error } catch { error = { type: 'api_error', message: data.slice(0, 500) } }
    this.failure = fromAnthropicError(error, 'upstream')
  }
}
