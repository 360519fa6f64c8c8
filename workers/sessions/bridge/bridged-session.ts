/**
 * A preset's session with the tool bridge beside its agent mode: each request goes one way or the other by the
 * account's `tools` setting and the request's tools (client-request.ts, `bridgeMode`). Stopping ends the bridged
 * conversations first, while the CLI can still hear that their turns are over, then the CLI.
 */
import type { Session } from '../types.ts'
import { bridgeMode, type ToolsSetting } from './client-request.ts'
import type { BridgeConversations } from './conversations.ts'

export interface BridgeHooks {
  readonly setting: ToolsSetting
  readonly conversations: BridgeConversations
  /** after the agent session started (Claude Code's bridge processes started ahead) */
  start?(): void
  /** after the conversations closed, before the agent session stops (the Gemini MCP server) */
  stop?(): Promise<void>
}

export function withToolBridge(agent: Session, hooks: BridgeHooks): Session {
  const { setting, conversations } = hooks
  return {
    async start() {
      await agent.start()
      hooks.start?.()
    },
    run(req, out) {
      if (setting === 'agent') return agent.run(req, out)
      let mode: 'client' | 'agent'
      try {
        mode = bridgeMode(setting, req.request)
      } catch (err) {
        return Promise.reject(err)
      }
      return mode === 'client' ? conversations.run(req, out) : agent.run(req, out)
    },
    async stop() {
      await conversations.closeAll('the account is stopping')
      await hooks.stop?.()
      await agent.stop()
    },
    ...(agent.reset ? { reset: () => agent.reset!() } : {}),
    get child() {
      return agent.child
    },
  }
}
