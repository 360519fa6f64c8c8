/**
 * A `gemini --acp` that bridged sessions share (docs/notes/tool-bridge-codex-gemini.md): the ACP handshake
 * (`initialize`, `authenticate`), then what the agent says about a session (`session/update`, and its requests such
 * as `session/request_permission`) goes to whoever listens on that session. One process serves many ACP sessions; a
 * bridged conversation costs a `session/new` (~50 ms with its MCP connection), not a CLI start (~1.7 s).
 *
 * Our own JSON-RPC peer, not `@agentclientprotocol/sdk`: the SDK brings zod and its own MCP server package into the
 * worker for the four methods used here, and the peer is already what the agent-mode preset speaks.
 */
import { handshake } from './handshake.ts'
import type { Child, Launcher } from '../process/child.ts'
import { fields, JsonRpcPeer, stringOf, type RpcParams } from '../agent/json-rpc.ts'

export interface AcpSessionListener {
  update(update: RpcParams): void
  /** a request of the agent about this session (a permission prompt); what it returns is the answer */
  request(method: string, params: RpcParams): unknown
  closed(reason: string): void
}

/** What a bridge needs of the CLI: its peer, and the traffic of its own session (this class, or a preset's shared CLI). */
export interface AcpSessions {
  readonly peer: JsonRpcPeer
  listen(sessionId: string, listener: AcpSessionListener): () => void
}

export interface GeminiAcpOptions {
  readonly model: string
  /** ACP auth method: `gemini-api-key`, `oauth-personal`, … (what the account's settings chose) */
  readonly authMethod: string
  readonly startTimeoutMs: number
  readonly maxLineBytes: number
  readonly extraArgs?: readonly string[]
  readonly log?: (msg: string, line: string) => void
}

export class GeminiAcp implements AcpSessions {
  readonly child: Child
  readonly peer: JsonRpcPeer
  readonly #sessions = new Map<string, AcpSessionListener>()
  #closed: string | undefined

  private constructor(child: Child, options: GeminiAcpOptions) {
    this.child = child
    this.peer = new JsonRpcPeer(child, true, {
      notification: (method, params) => {
        if (method === 'session/update') this.#listener(params.sessionId)?.update(fields(params.update))
      },
      request: (method, params) => {
        const listener = this.#listener(params.sessionId)
        if (listener) return listener.request(method, params)
        if (method === 'session/request_permission') return { outcome: { outcome: 'cancelled' } }
        throw new Error(`method ${method} is not offered by this client`)
      },
      stray: (line) => options.log?.('gemini printed a line that is not JSON-RPC', line),
    }, options.maxLineBytes)
    void child.closed.then(({ code, signal }) => this.#close(child.describeExit(code, signal)))
  }

  static async start(launcher: Launcher, options: GeminiAcpOptions): Promise<GeminiAcp> {
    const child = launcher.spawn(['--acp', '-m', options.model, ...(options.extraArgs ?? [])], 'gemini-cli')
    const acp = new GeminiAcp(child, options)
    await handshake(child, 'gemini-cli', options.startTimeoutMs, async () => {
      await acp.peer.request('initialize', { protocolVersion: 1, clientCapabilities: { fs: { readTextFile: false, writeTextFile: false }, terminal: false } })
      await acp.peer.request('authenticate', { methodId: options.authMethod })
    })
    return acp
  }

  get alive(): boolean {
    return this.#closed === undefined
  }

  listen(sessionId: string, listener: AcpSessionListener): () => void {
    this.#sessions.set(sessionId, listener)
    return () => { if (this.#sessions.get(sessionId) === listener) this.#sessions.delete(sessionId) }
  }

  async stop(): Promise<void> {
    this.#close('gemini-cli is stopping')
    await this.child.kill()
  }

  /** the listener on the session the agent named (an id that is not a string names none) */
  #listener(sessionId: unknown): AcpSessionListener | undefined {
    return typeof sessionId === 'string' ? this.#sessions.get(sessionId) : undefined
  }

  #close(reason: string): void {
    if (this.#closed !== undefined) return
    this.#closed = reason
    this.peer.close(reason)
    for (const listener of this.#sessions.values()) listener.closed(reason)
    this.#sessions.clear()
  }
}

export interface PermissionOption { readonly optionId: string; readonly kind?: string }

/** the choices of a `session/request_permission`, those with an id (the answer names one) */
export function permissionOptions(params: RpcParams): PermissionOption[] {
  if (!Array.isArray(params.options)) return []
  return params.options.flatMap((value: unknown) => {
    const option = fields(value)
    const optionId = stringOf(option.optionId)
    return optionId === undefined ? [] : [{ optionId, kind: stringOf(option.kind) }]
  })
}
