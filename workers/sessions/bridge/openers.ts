/**
 * How each preset opens a bridged conversation: Codex a thread with the client's tools as `dynamicTools`
 * (codex-tools.ts) and Gemini CLI an ACP session with our MCP server (gemini-tools.ts), both on the CLI the account
 * already runs (shared-cli.ts); Claude Code a process of its own (claude-tools.ts: its stream-json mode is one
 * conversation per process), its built-ins off and our in-process MCP server declared, taken from those started
 * ahead when one waits (claude-warm.ts). The bridge modules are loaded on the first bridged request: an account that only ever runs its agent's own tools
 * does not pay for them (nor for the MCP SDK and the zod it brings, gemini-mcp.ts).
 */
import { OrchestratorError } from '../../../src/errors.ts'
import { cliError } from '../agent/cli-errors.ts'
import { RpcError } from '../agent/json-rpc.ts'
import { createLauncher, logStderr, type Child, type ChildSpec, type Launcher } from '../process/child.ts'
import type { SessionContext } from '../types.ts'
import type { ThreadListener } from './codex-app-server.ts'
import type { BridgePreset } from './conversations.ts'
import type { AcpSessionListener } from './gemini-acp.ts'
import type { ClientToolServer } from './gemini-mcp.ts'
import type { SharedCli } from './shared-cli.ts'
import { claudeBridgeArgs } from './claude-mcp.ts'
import { WarmProcesses } from './claude-warm.ts'

/**
 * The CLIs' own instructions (Codex 17.7 KB, Claude Code 5.8 KB) describe built-in tools a bridged conversation does
 * not have: they are replaced, by the client's system text when it sends one, else by this line.
 */
const PLAIN_INSTRUCTIONS = 'You are a helpful assistant.'

function notUp(what: string, why: string): OrchestratorError {
  return new OrchestratorError('AGYC_UPSTREAM_FAILED', `${what} is not up (${why})`)
}

export interface CodexBridgeConfig {
  readonly model?: string | undefined
  readonly systemPrompt?: string | undefined
}

/** `cwd`: the bridge folder (nothing runs there: no tool of Codex's is left) */
export function codexBridge(shared: SharedCli<ThreadListener>, config: CodexBridgeConfig, cwd: string): BridgePreset {
  return {
    what: 'codex',
    systemApart: true,
    async open({ tools, system, toolResultTimeoutMs, onClosed }) {
      const host = shared.host()
      if (typeof host === 'string') throw notUp('codex', host)
      const { CodexToolBridge } = await import('./codex-tools.ts')
      const instructions = [system ?? PLAIN_INSTRUCTIONS, config.systemPrompt].filter((s) => s !== undefined && s !== '').join('\n\n')
      try {
        return await CodexToolBridge.open(host, { tools, system: instructions, model: config.model, cwd, toolResultTimeoutMs, onClosed })
      } catch (err) {
        throw err instanceof RpcError ? cliError('codex', err.message) : err
      }
    },
  }
}

export interface GeminiBridge extends BridgePreset {
  /** stops the MCP server, if one was started */
  stop(): Promise<void>
}

/** `cwd`: the bridge folder whose workspace settings exclude Gemini's built-ins (prepareBridgeWorkspace) */
export function geminiBridge(shared: SharedCli<AcpSessionListener>, cwd: string): GeminiBridge {
  let server: Promise<ClientToolServer> | undefined
  return {
    what: 'gemini-cli',
    // the client's system text goes into the prompt: Gemini's system prompt is per process (GEMINI_SYSTEM_MD)
    systemApart: false,
    async open({ tools, toolResultTimeoutMs, onClosed }) {
      const host = shared.host()
      if (typeof host === 'string') throw notUp('gemini-cli', host)
      const { GeminiToolBridge } = await import('./gemini-tools.ts')
      // one MCP server per account, started with its first bridged conversation
      server ??= import('./gemini-mcp.ts').then(({ ClientToolServer }) => ClientToolServer.start())
      let mcp: ClientToolServer
      try {
        mcp = await server
      } catch (err) {
        server = undefined
        throw new OrchestratorError('AGYC_UPSTREAM_FAILED', `gemini-cli: the MCP server for the client's tools did not start: ${(err as Error).message}`)
      }
      return GeminiToolBridge.open(host, mcp, { tools, cwd, toolResultTimeoutMs, onClosed })
    },
    async stop() {
      const started = await server?.catch(() => undefined)
      server = undefined
      await started?.stop()
    },
  }
}

export interface ClaudeBridgeConfig {
  readonly model?: string | undefined
  readonly systemPrompt?: string | undefined
  readonly extraArgs: readonly string[]
  readonly maxOutputBytes: number
  /** bridge processes to keep started ahead (the preset's `prewarm`, bounded by the account's concurrency) */
  readonly prewarm: number
}

export interface ClaudeBridge extends BridgePreset {
  /** from now on keep `prewarm` processes started ahead (`tools: "client"` at start; `"auto"` once it bridges) */
  keepWarm(): void
  /** kills the processes started ahead */
  stop(): Promise<void>
}

/** a cold Claude Code takes ~0.6 s to answer `initialize` on a quiet machine, seconds on a loaded one */
const CLAUDE_START_TIMEOUT_MS = 60_000

/** `spec`: the account's preset spec, its environment with CLAUDE_BRIDGE_ENV (the tools keep their own names) */
export function claudeBridge(context: SessionContext, config: ClaudeBridgeConfig, spec: ChildSpec): ClaudeBridge {
  let launcher: Launcher | undefined
  const launch = (): Child => {
    launcher ??= createLauncher(context, spec)
    const child = launcher.spawn(claudeBridgeArgs({ model: config.model, extraArgs: config.extraArgs }), 'claude-code')
    logStderr(context, child)
    return child
  }
  const warm = new WarmProcesses(Math.min(config.prewarm, context.account.maxConcurrency), launch, (child) => {
    context.emit({ kind: 'log', level: 'warn', msg: 'claude-code bridge process started ahead died while waiting', fields: { reason: child.describeExit(null, null) } })
  })
  return {
    what: 'claude-code',
    systemApart: true,
    async open({ tools, system, toolResultTimeoutMs, onClosed }) {
      const { ClaudeToolBridge } = await import('./claude-tools.ts')
      const child = warm.take() ?? launch()
      try {
        return await ClaudeToolBridge.open(child, {
          tools, system: system ?? PLAIN_INSTRUCTIONS, ...(config.systemPrompt ? { appendSystem: config.systemPrompt } : {}),
          toolResultTimeoutMs, startTimeoutMs: CLAUDE_START_TIMEOUT_MS, maxLineBytes: config.maxOutputBytes, onClosed,
          log: (msg, fields) => context.emit({ kind: 'log', level: 'warn', msg, fields }),
        })
      } finally {
        // the replacement boots once this conversation's CLI has answered: not on the same cores at the same moment
        warm.keepWarm()
      }
    },
    keepWarm: () => warm.keepWarm(),
    stop: () => warm.stop(),
  }
}
