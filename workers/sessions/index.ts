/** Session kinds by name: the only place that knows them all. */
import type { SessionContext, Session, SessionFactory } from './types.ts'
import { createClaudeCodeSession } from './claude-code.ts'
import { createCodexSession } from './codex.ts'
import { createExecSession } from './exec.ts'
import { createGeminiCliSession } from './gemini-cli.ts'
import { createHttpSession } from './http.ts'
import { createMockSession } from './mock.ts'
import { createStdioSession } from './stdio.ts'

const factories: Record<SessionContext['account']['session']['kind'], SessionFactory> = {
  mock: createMockSession,
  exec: (context) => createExecSession(context),
  stdio: createStdioSession,
  http: createHttpSession,
  'claude-code': createClaudeCodeSession,
  'gemini-cli': createGeminiCliSession,
  codex: createCodexSession,
}

export function createSession(context: SessionContext): Session {
  return factories[context.account.session.kind](context)
}
