/**
 * A `codex app-server` that bridged threads share (docs/notes/tool-bridge-codex-gemini.md). It opts into the
 * experimental API at `initialize` (without it `thread/start` ignores `dynamicTools` and Codex never sends
 * `item/tool/call`), then routes what the server says about a thread (notifications, and its requests such as
 * `item/tool/call`) to whoever listens on that thread. One process serves many threads: a bridged conversation costs
 * a `thread/start`, not a CLI start.
 */
import { handshake } from './handshake.ts'
import type { Child, Launcher } from '../process/child.ts'
import { JsonRpcPeer, type RpcParams } from '../agent/json-rpc.ts'

export interface ThreadListener {
  notification(method: string, params: RpcParams): void
  /** a request of the server about this thread; what it returns (or resolves to) is the answer */
  request(method: string, params: RpcParams): unknown
  /** the server went away: nothing more will come */
  closed(reason: string): void
}

/** What a bridge needs of the server: its peer, and the traffic of its own thread (this class, or a preset's shared CLI). */
export interface CodexThreads {
  readonly peer: JsonRpcPeer
  listen(threadId: string, listener: ThreadListener): () => void
}

export interface CodexAppServerOptions {
  /** after `app-server`: e.g. `-c key=value` overrides; the bridge itself needs none (its thread config does it) */
  readonly extraArgs?: readonly string[]
  readonly startTimeoutMs: number
  readonly maxLineBytes: number
  readonly clientName?: string
  /** a line of stderr or a stray stdout line, for the log */
  readonly log?: (msg: string, line: string) => void
}

export class CodexAppServer implements CodexThreads {
  readonly child: Child
  readonly peer: JsonRpcPeer
  readonly #threads = new Map<string, ThreadListener>()
  #closed: string | undefined

  private constructor(child: Child, options: CodexAppServerOptions) {
    this.child = child
    this.peer = new JsonRpcPeer(child, false, {
      notification: (method, params) => this.#listener(params.threadId)?.notification(method, params),
      request: (method, params) => {
        const listener = this.#listener(params.threadId)
        if (listener) return listener.request(method, params)
        // not a bridged thread's (or one already closed): nobody may approve anything
        if (method === 'item/commandExecution/requestApproval' || method === 'item/fileChange/requestApproval') return { decision: 'decline' }
        if (method === 'item/tool/call') return { contentItems: [{ type: 'inputText', text: 'This conversation is closed.' }], success: false }
        throw new Error(`method ${method} is not offered by this client`)
      },
      stray: (line) => options.log?.('codex printed a line that is not JSON-RPC', line),
    }, options.maxLineBytes)
    void child.closed.then(({ code, signal }) => this.#close(child.describeExit(code, signal)))
  }

  /** spawns `codex app-server` and completes the handshake; kills the child when that fails */
  static async start(launcher: Launcher, options: CodexAppServerOptions): Promise<CodexAppServer> {
    const child = launcher.spawn(['app-server', ...(options.extraArgs ?? [])], 'codex')
    const server = new CodexAppServer(child, options)
    await handshake(child, 'codex', options.startTimeoutMs, () => server.peer.request('initialize', {
      clientInfo: { name: options.clientName ?? 'agyc', title: 'AGYC Orchestrator', version: '0.1.0' },
      capabilities: { experimentalApi: true },
    }))
    server.peer.notify('initialized', {})
    return server
  }

  get alive(): boolean {
    return this.#closed === undefined
  }

  /** routes the thread's traffic to `listener` until the returned function is called */
  listen(threadId: string, listener: ThreadListener): () => void {
    this.#threads.set(threadId, listener)
    return () => { if (this.#threads.get(threadId) === listener) this.#threads.delete(threadId) }
  }

  /** stops the process group; every listener hears why */
  async stop(): Promise<void> {
    this.#close('the codex app-server is stopping')
    await this.child.kill()
  }

  /** the listener on the thread the server named (an id that is not a string names none) */
  #listener(threadId: unknown): ThreadListener | undefined {
    return typeof threadId === 'string' ? this.#threads.get(threadId) : undefined
  }

  #close(reason: string): void {
    if (this.#closed !== undefined) return
    this.#closed = reason
    this.peer.close(reason)
    for (const listener of this.#threads.values()) listener.closed(reason)
    this.#threads.clear()
  }
}
