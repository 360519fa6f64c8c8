/**
 * JSON-RPC over a long-lived child's stdio, one object per line: Gemini CLI's ACP (JSON-RPC 2.0) and Codex's
 * app-server (the same shape without the `"jsonrpc"` field). Our requests carry numeric ids; the child's own requests
 * (a permission prompt) are answered by the handler; everything else is a notification.
 */
import { readLines } from '../process/lines.ts'
import type { Child } from '../process/child.ts'

export class RpcError extends Error {
  readonly code: number | undefined
  readonly data: unknown
  constructor(message: string, code?: number, data?: unknown) {
    super(message)
    this.name = 'RpcError'
    this.code = code
    this.data = data
  }
}

/**
 * A message's params as handlers see them: by-name params (an object); none, or by-position params (an array), read
 * as `{}`. The fields are the CLI's own and unchecked: a handler narrows each one it reads (`fields`, `typeof`).
 */
export type RpcParams = Readonly<Record<string, unknown>>

/** an object's fields, or none: reads nested params without trusting their shape */
export function fields(value: unknown): RpcParams {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? value as RpcParams : {}
}

/** a string, or undefined for anything else */
export function stringOf(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}

export interface RpcHandlers {
  notification(method: string, params: RpcParams): void
  /** a request from the child; what it returns (or resolves to) is the result, a throw the error */
  request(method: string, params: RpcParams): unknown
  /** a stdout line that is not JSON-RPC: logged, not fatal (CLIs print the odd warning there) */
  stray(line: string): void
}

interface Incoming { id?: unknown; method?: unknown; params?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown; data?: unknown } }

export class JsonRpcPeer {
  readonly #child: Child
  readonly #tagged: boolean
  readonly #handlers: RpcHandlers
  readonly #pending = new Map<number, { resolve(value: unknown): void; reject(err: Error): void }>()
  #nextId = 1
  #closed: string | undefined

  /** `tagged`: add `"jsonrpc":"2.0"` to every message (ACP wants it, Codex's app-server leaves it out) */
  constructor(child: Child, tagged: boolean, handlers: RpcHandlers, maxLineBytes: number) {
    this.#child = child
    this.#tagged = tagged
    this.#handlers = handlers
    readLines(child.proc.stdout, maxLineBytes, (line) => this.#onLine(line), (why) => {
      this.close(`${child.what} broke the protocol: ${why}`)
      void child.kill()
    })
    void child.closed.then(({ code, signal }) => this.close(child.describeExit(code, signal)))
  }

  /** `T`: the result's shape as the CLI's protocol documents it for `method` (not checked here); unknown unless named */
  request<T = unknown>(method: string, params: unknown): Promise<T> {
    if (this.#closed) return Promise.reject(new RpcError(this.#closed))
    const id = this.#nextId++
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: (value) => resolve(value as T), reject })
      this.#send({ id, method, params })
    })
  }

  notify(method: string, params: unknown): void {
    if (!this.#closed) this.#send({ method, params })
  }

  /** fails every request still waiting for its answer */
  close(reason: string): void {
    this.#closed ??= reason
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id)
      pending.reject(new RpcError(reason))
    }
  }

  #send(message: Record<string, unknown>): void {
    this.#child.proc.stdin.write(`${JSON.stringify(this.#tagged ? { jsonrpc: '2.0', ...message } : message)}\n`)
  }

  #onLine(text: string): void {
    if (text.trim() === '') return
    let message: Incoming
    try {
      message = JSON.parse(text) as Incoming
      if (!message || typeof message !== 'object') throw new Error('not an object')
    } catch {
      this.#handlers.stray(text.slice(0, 1_000))
      return
    }
    if (typeof message.method === 'string') {
      if (message.id === undefined || message.id === null) {
        this.#handlers.notification(message.method, fields(message.params))
        return
      }
      const id = message.id
      Promise.resolve()
        .then(() => this.#handlers.request(message.method as string, fields(message.params)))
        .then(
          (result) => this.#send({ id, result: result ?? null }),
          (err: unknown) => this.#send({ id, error: { code: -32601, message: err instanceof Error ? err.message : String(err) } }),
        )
      return
    }
    const pending = typeof message.id === 'number' ? this.#pending.get(message.id) : undefined
    if (!pending) return
    this.#pending.delete(message.id as number)
    if (message.error) {
      const e = message.error
      pending.reject(new RpcError(typeof e.message === 'string' ? e.message : 'error', typeof e.code === 'number' ? e.code : undefined, e.data))
    } else pending.resolve(message.result)
  }
}
