/**
 * Session kinds by name: the only place that knows them all. Each kind is imported when an account uses it, not
 * before: a worker holds one account, and every module a worker loads costs that worker's isolate its memory (undici
 * alone is ~10 MB a worker; a mock account needs none of the child-process or HTTP machinery).
 */
import type { SessionContext, Session, SessionFactory } from './types.ts'

const factories: Record<SessionContext['account']['session']['kind'], () => Promise<SessionFactory>> = {
  mock: async () => (await import('./mock.ts')).createMockSession,
  exec: async () => {
    const { createExecSession } = await import('./exec.ts')
    return (context) => createExecSession(context)
  },
  stdio: async () => (await import('./stdio.ts')).createStdioSession,
  http: async () => (await import('./http.ts')).createHttpSession,
  'claude-code': async () => (await import('./claude-code.ts')).createClaudeCodeSession,
  'gemini-cli': async () => (await import('./gemini-cli.ts')).createGeminiCliSession,
  codex: async () => (await import('./codex.ts')).createCodexSession,
}

export async function createSession(context: SessionContext): Promise<Session> {
  const create = await factories[context.account.session.kind]()
  return create(context)
}
