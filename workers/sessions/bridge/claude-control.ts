/**
 * Claude Code's control protocol on stdio (docs/notes/tool-bridge-claude.md): what `@anthropic-ai/claude-agent-sdk`
 * speaks to the CLI it starts, reduced to the part the tool bridge needs. Both sides write one JSON object per line
 * on the `-p --input-format stream-json --output-format stream-json` pipes:
 *
 *   → {"type":"control_request","request_id":"agyc-1","request":{"subtype":"initialize","sdkMcpServers":["client"],…}}
 *   ← {"type":"control_response","response":{"subtype":"success","request_id":"agyc-1","response":{…}}}
 *   ← {"type":"control_request","request_id":"<uuid>","request":{"subtype":"mcp_message","server_name":"client",
 *        "message":{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{…}}}}
 *   → {"type":"control_response","response":{"subtype":"success","request_id":"<uuid>",
 *        "response":{"mcp_response":{"jsonrpc":"2.0","id":2,"result":{…}}}}}
 *
 * An "SDK" MCP server lives in the parent: the CLI sends it MCP's JSON-RPC messages wrapped in `mcp_message`
 * control requests and waits for the answer, however long it takes. Everything else the CLI prints (system,
 * stream_event, assistant, user, result) goes to `message`.
 *
 * Why not the Agent SDK as a library: it is a 0.9 MB bundle with its own zod and MCP SDK inside (+34 MB resident and
 * ~77 ms to import, per worker thread, measured), its version must match the CLI's (the newest passes
 * `--await-initialize`, which Claude Code 2.1.197 refuses), it pulls a second copy of the CLI binary as an optional
 * dependency, and its tools take zod shapes where we hold the client's JSON Schemas. The four messages above are all
 * the bridge uses.
 */
import type { Readable, Writable } from 'node:stream'
import { LineSplitter } from '../process/lines.ts'

/** What the bridge needs of a spawned CLI; `Child` (../child.ts) has it. */
export interface ClaudeProcess {
  readonly proc: { readonly stdin: Writable; readonly stdout: Readable }
  readonly pid: number | undefined
  /** settles when the process exited and its pipes closed */
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** SIGTERM to its process group, SIGKILL after a grace period; resolves once it is gone */
  kill(): Promise<void>
  describeExit(code: number | null, signal: NodeJS.Signals | null): string
}

/** A JSON-RPC message of MCP, as the CLI sends it to an SDK server. */
export interface McpMessage {
  readonly jsonrpc?: string
  readonly id?: string | number | null
  readonly method?: string
  readonly params?: Record<string, unknown>
}

/** A stream-json line that is not part of the control protocol. */
export interface StreamLine {
  readonly type?: unknown
  readonly subtype?: unknown
  readonly [key: string]: unknown
}

export interface ControlHandlers {
  message(line: StreamLine): void
  /**
   * A request (or notification) for our SDK MCP server `server`: what it returns, or resolves to, is the JSON-RPC
   * `result`; a throw becomes a JSON-RPC error. Notifications are acknowledged whatever it returns.
   */
  mcp(server: string, message: McpMessage): unknown
  /** a line that is not JSON, or too long */
  stray(line: string): void
}

interface Waiting {
  resolve(response: Record<string, unknown>): void
  reject(error: Error): void
}

export class ClaudeControl {
  readonly #child: ClaudeProcess
  readonly #handlers: ControlHandlers
  readonly #waiting = new Map<string, Waiting>()
  #next = 0
  #closed: Error | undefined

  constructor(child: ClaudeProcess, handlers: ControlHandlers, maxLineBytes: number) {
    this.#child = child
    this.#handlers = handlers
    const lines = new LineSplitter(maxLineBytes)
    child.proc.stdout.setEncoding('utf8')
    child.proc.stdout.on('data', (text: string) => {
      let complete: string[]
      try {
        complete = lines.push(text)
      } catch {
        // one line past the limit: drop it whole rather than parse its tail as a line of its own
        handlers.stray(lines.rest().slice(0, 200))
        return
      }
      for (const line of complete) if (line.trim()) this.#line(line)
    })
  }

  /** Writes one message (a user turn, a control response). Nothing is written once the process is gone. */
  send(message: object): void {
    if (this.#closed) return
    this.#child.proc.stdin.write(`${JSON.stringify(message)}\n`)
  }

  /** A control request of ours; resolves with the CLI's `response` object, rejects with its `error`. */
  request(request: { subtype: string; [key: string]: unknown }): Promise<Record<string, unknown>> {
    if (this.#closed) return Promise.reject(this.#closed)
    const id = `agyc-${++this.#next}`
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject })
      this.send({ type: 'control_request', request_id: id, request })
    })
  }

  /** The process is gone: every request of ours still waiting fails with `error`. */
  close(error: Error): void {
    this.#closed ??= error
    for (const waiting of this.#waiting.values()) waiting.reject(error)
    this.#waiting.clear()
  }

  #line(text: string): void {
    let line: StreamLine
    try {
      line = JSON.parse(text) as StreamLine
    } catch {
      this.#handlers.stray(text.slice(0, 200))
      return
    }
    if (line.type === 'control_response') return this.#response(line.response as Record<string, unknown> | undefined)
    if (line.type === 'control_request') return void this.#serve(String(line.request_id), line.request as Record<string, unknown> | undefined)
    // a request of the CLI's it no longer wants answered: MCP calls are cancelled in MCP itself (notifications/cancelled)
    if (line.type === 'control_cancel_request') return
    this.#handlers.message(line)
  }

  #response(response: Record<string, unknown> | undefined): void {
    const id = String(response?.request_id)
    const waiting = this.#waiting.get(id)
    if (!waiting) return
    this.#waiting.delete(id)
    if (response?.subtype === 'success') waiting.resolve((response.response ?? {}) as Record<string, unknown>)
    else waiting.reject(new Error(String(response?.error ?? 'control request failed')))
  }

  async #serve(requestId: string, request: Record<string, unknown> | undefined): Promise<void> {
    const reply = (response: object): void => this.send({ type: 'control_response', response: { subtype: 'success', request_id: requestId, response } })
    const refuse = (error: string): void => this.send({ type: 'control_response', response: { subtype: 'error', request_id: requestId, error } })
    if (request?.subtype !== 'mcp_message') {
      // permission prompts and hooks are not asked for (no --permission-prompt-tool, no hooks in initialize)
      return refuse(`agyc does not answer control requests of subtype ${String(request?.subtype)}`)
    }
    const message = (request.message ?? {}) as McpMessage
    const server = String(request.server_name)
    const isRequest = message.id !== undefined && message.id !== null && typeof message.method === 'string'
    if (!isRequest) {
      // notifications (initialized, cancelled) expect no JSON-RPC answer, but their control request does
      try { this.#handlers.mcp(server, message) } catch { /* nothing to tell */ }
      return reply({ mcp_response: { jsonrpc: '2.0', result: {}, id: 0 } })
    }
    try {
      const result = await this.#handlers.mcp(server, message)
      reply({ mcp_response: { jsonrpc: '2.0', id: message.id, result } })
    } catch (err) {
      const code = (err as { code?: unknown })?.code
      reply({ mcp_response: { jsonrpc: '2.0', id: message.id, error: { code: typeof code === 'number' ? code : -32603, message: (err as Error)?.message ?? String(err) } } })
    }
  }
}
