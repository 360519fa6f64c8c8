/** Session kinds by name: the only place that knows them all. */
import type { SessionContext, Session, SessionFactory } from './types.ts'
import { createExecSession } from './exec.ts'
import { createHttpSession } from './http.ts'
import { createMockSession } from './mock.ts'
import { createStdioSession } from './stdio.ts'

const factories: Record<SessionContext['account']['session']['kind'], SessionFactory> = {
  mock: createMockSession,
  exec: createExecSession,
  stdio: createStdioSession,
  http: createHttpSession,
}

export function createSession(context: SessionContext): Session {
  return factories[context.account.session.kind](context)
}
