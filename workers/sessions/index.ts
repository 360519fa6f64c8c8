/** Session kinds by name: the only place that knows them all. */
import type { SessionContext, Session, SessionFactory } from './types.ts'
import { createMockSession } from './mock.ts'

const factories: Record<SessionContext['account']['session']['kind'], SessionFactory> = {
  mock: createMockSession,
}

export function createSession(context: SessionContext): Session {
  return factories[context.account.session.kind](context)
}
