/**
 * The MCP server that offers the client's tools to Gemini CLI (issue 14): the official `@modelcontextprotocol/sdk`
 * server over Streamable HTTP on 127.0.0.1, one per account, one route per bridged session
 * (`/mcp/<route id>`, with a per-session secret as a bearer token). Gemini CLI connects when its ACP session is
 * created (the server is passed in `session/new`), lists the tools, and calls one with `tools/call`; the call's HTTP
 * request stays open until the client's result comes back through the bridge.
 *
 * Answers are SSE streams, not JSON bodies: Gemini's fetch gives up on a response whose headers take more than 60 s
 * (its undici `headersTimeout`) and on a body silent for 300 s. An SSE answer sends its headers at once and the SDK
 * writes a keep-alive comment every 15 s, so a call can wait up to Gemini's own MCP timeout (10 min for a server
 * passed through ACP, which cannot set `timeout`). The SDK (and the zod it brings) is loaded on first use only:
 * a worker that never bridges a Gemini session does not pay for it.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Server as McpServer } from '@modelcontextprotocol/sdk/server/index.js'
import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { exposedToolNames } from './gemini-settings.ts'
import { resultImages, resultText, type ClientTool, type ToolResult } from './types.ts'

/** runs one call of the client's tool; `signal` aborts when Gemini gives up on it (cancel, its own timeout) */
export type ToolHandler = (clientName: string, input: Record<string, unknown>, signal: AbortSignal) => Promise<ToolResult>

export interface ToolRoute {
  /** for ACP `session/new` `mcpServers[]` (`type: "http"`) */
  readonly url: string
  readonly headers: readonly { name: string; value: string }[]
  /** the client's tool name → the name offered to Gemini (without Gemini's `mcp_<server>_` prefix) */
  readonly exposed: ReadonlyMap<string, string>
  close(): Promise<void>
}

interface Route {
  readonly secret: Buffer
  readonly tools: readonly ClientTool[]
  readonly exposed: ReadonlyMap<string, string>
  readonly byExposed: ReadonlyMap<string, string>
  readonly handler: ToolHandler
  readonly transports: Map<string, StreamableHTTPServerTransport>
  /** open HTTP answers to `tools/call`: closing the route lets them finish first */
  readonly calls: Set<Promise<void>>
}

type Sdk = Awaited<ReturnType<typeof loadSdk>>

async function loadSdk() {
  const [server, http, types] = await Promise.all([
    import('@modelcontextprotocol/sdk/server/index.js'),
    import('@modelcontextprotocol/sdk/server/streamableHttp.js'),
    import('@modelcontextprotocol/sdk/types.js'),
  ])
  return { Server: server.Server, Transport: http.StreamableHTTPServerTransport, ListTools: types.ListToolsRequestSchema, CallTool: types.CallToolRequestSchema }
}

/** how long closing a route waits for answers still being written */
const CLOSE_GRACE_MS = 1_000

/** MCP messages from Gemini are small (a tool's arguments); anything bigger is not ours */
const MAX_BODY_BYTES = 4 * 1024 * 1024

export class ClientToolServer {
  readonly #http: HttpServer
  readonly #sdk: Sdk
  readonly #routes = new Map<string, Route>()
  readonly #base: string

  private constructor(http: HttpServer, sdk: Sdk) {
    this.#http = http
    this.#sdk = sdk
    this.#base = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp/`
  }

  static async start(): Promise<ClientToolServer> {
    const sdk = await loadSdk()
    let server: ClientToolServer | undefined
    const http = createServer((req, res) => void server?.handle(req, res))
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject)
      http.listen(0, '127.0.0.1', () => resolve())
    })
    server = new ClientToolServer(http, sdk)
    return server
  }

  /** offers `tools` at a route of its own; the route lives until `close()` */
  register(tools: readonly ClientTool[], handler: ToolHandler): ToolRoute {
    const id = randomBytes(16).toString('hex')
    const secret = randomBytes(32).toString('base64url')
    const exposed = exposedToolNames(tools.map((t) => t.name))
    const route: Route = {
      secret: Buffer.from(`Bearer ${secret}`), tools, exposed, handler, transports: new Map(), calls: new Set(),
      byExposed: new Map([...exposed].map(([client, offered]) => [offered, client])),
    }
    this.#routes.set(id, route)
    return {
      url: `${this.#base}${id}`,
      headers: [{ name: 'authorization', value: `Bearer ${secret}` }],
      exposed,
      close: async () => {
        this.#routes.delete(id)
        // a call just answered (an error result at a deadline) is still being written: Gemini must get it
        let timer: NodeJS.Timeout | undefined
        await Promise.race([Promise.all(route.calls), new Promise((r) => { timer = setTimeout(r, CLOSE_GRACE_MS) })])
        clearTimeout(timer)
        await Promise.all([...route.transports.values()].map((t) => t.close().catch(() => {})))
        route.transports.clear()
      },
    }
  }

  async stop(): Promise<void> {
    for (const route of this.#routes.values()) for (const t of route.transports.values()) await t.close().catch(() => {})
    this.#routes.clear()
    this.#http.closeAllConnections()
    await new Promise<void>((resolve) => this.#http.close(() => resolve()))
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const route = this.#routes.get((req.url ?? '').replace(/^\/mcp\//, '').split(/[/?]/)[0])
    const auth = Buffer.from(String(req.headers.authorization ?? ''))
    if (!route || auth.length !== route.secret.length || !timingSafeEqual(auth, route.secret)) {
      return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}')
    }
    try {
      const body = req.method === 'POST' ? await readJson(req) : undefined
      if ((body as { method?: unknown } | undefined)?.method === 'tools/call') {
        const done = new Promise<void>((resolve) => res.once('close', resolve))
        route.calls.add(done)
        void done.then(() => route.calls.delete(done))
      }
      const sessionId = req.headers['mcp-session-id']
      let transport = typeof sessionId === 'string' ? route.transports.get(sessionId) : undefined
      if (!transport) {
        if (typeof sessionId === 'string') return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"unknown session"}')
        transport = await this.#connect(route)
      }
      await transport.handleRequest(req, res, body)
    } catch (err) {
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: String((err as Error).message) }))
      else res.end()
    }
  }

  /** a new MCP session on a route: the SDK's server with the route's tools, answering in SSE (see above) */
  async #connect(route: Route): Promise<StreamableHTTPServerTransport> {
    const { Server, Transport, ListTools, CallTool } = this.#sdk
    const transport: StreamableHTTPServerTransport = new Transport({
      sessionIdGenerator: () => randomBytes(16).toString('hex'),
      enableJsonResponse: false,
      onsessioninitialized: (id) => { route.transports.set(id, transport) },
    })
    transport.onclose = () => { if (transport.sessionId) route.transports.delete(transport.sessionId) }
    const mcp: McpServer = new Server({ name: 'agyc-client-tools', version: '0.1.0' }, { capabilities: { tools: {} } })
    mcp.setRequestHandler(ListTools, async () => ({
      tools: route.tools.map((t) => ({ name: route.exposed.get(t.name)!, description: t.description ?? '', inputSchema: t.input_schema as { type: 'object' } })),
    }))
    mcp.setRequestHandler(CallTool, async (request, extra) => {
      const client = route.byExposed.get(request.params.name)
      if (!client) return { content: [{ type: 'text' as const, text: `Unknown tool ${request.params.name}` }], isError: true }
      const result = await route.handler(client, request.params.arguments ?? {}, extra.signal)
      return toCallToolResult(result)
    })
    await mcp.connect(transport)
    return transport
  }
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) return void req.destroy(new Error('MCP message too large'))
      chunks.push(chunk)
    })
    req.on('error', reject)
    req.on('end', () => {
      try { resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))) } catch (err) { reject(err as Error) }
    })
  })
}

/** the client's `tool_result` as MCP's CallToolResult: text and image content, `isError` kept */
export function toCallToolResult(result: ToolResult): { content: ({ type: 'text'; text: string } | { type: 'image'; data: string; mimeType: string })[]; isError: boolean } {
  const content: ({ type: 'text'; text: string } | { type: 'image'; data: string; mimeType: string })[] = []
  const text = resultText(result)
  if (text || resultImages(result).length === 0) content.push({ type: 'text', text })
  for (const image of resultImages(result)) content.push({ type: 'image', data: image.data, mimeType: image.media_type })
  return { content, isError: result.is_error === true }
}
