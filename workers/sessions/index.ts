/**
 * Session kinds by name: the only place that knows them all. Each kind is imported when an account uses it, not
 * before: a worker holds one account, and every module a worker loads costs that worker's isolate its memory (undici
 * alone is ~10 MB a worker; a mock account needs none of the child-process or HTTP machinery).
 */
import type { SessionContext, Session, SessionFactory } from './types.ts'

const factories: Record<SessionContext['account']['session']['kind'], () => Promise<SessionFactory>> = {
  mock: async () => (await import('./mock.ts')).createMockSession,
  exec: async () => (await import('./exec.ts')).createExecSession,
  stdio: async () => (await import('./stdio.ts')).createStdioSession,
  http: async () => (await import('./http.ts')).createHttpSession,
}

export async function createSession(context: SessionContext): Promise<Session> {
  const create = await factories[context.account.session.kind]()
  return create(context)
}
