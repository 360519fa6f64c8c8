/**
 * piscina entry of an account worker. The main thread runs exactly one task per worker thread, `attach`, which lives as
 * long as the account: it builds the session, answers requests on the data port and exposes the control plane
 * (comlink) on its own port. piscina hosts the thread (start, replacement on death, resource limits); the data path
 * is our own port, because one piscina task per request costs a task envelope and a transferred MessageChannel per
 * request (docs/performance.md, "Why the data path is not a piscina task per request").
 */
import type { MessagePort } from 'node:worker_threads'
import * as Comlink from 'comlink'
import { portEndpoint } from '../src/protocol/comlink-port.ts'
import type { AccountConfig } from '../src/config/schema.ts'
import type { ControlApi } from '../src/protocol/messages.ts'
import { AccountHost } from './account-host.ts'
import { createSession } from './sessions/index.ts'

export interface AttachTask {
  account: AccountConfig
  data: MessagePort
  control: MessagePort
  heartbeatMs: number
}

export default async function attach(task: AttachTask): Promise<'stopped'> {
  const { account, data, control } = task
  let host: AccountHost | undefined
  const session = await createSession({ account, emit: (event) => host?.post(event) })
  host = new AccountHost(account.id, data, session, account.maxConcurrency)
  const { promise: stopped, resolve: markStopped } = Promise.withResolvers<'stopped'>()
  const api: ControlApi = {
    stats: () => host.stats(),
    drain: () => host.idle(),
    reset: () => {
      if (!session.reset) return false
      session.reset()
      return true
    },
    stop: async () => {
      await host.close()
      // end the task after comlink has posted this call's reply: closing the port first would swallow it
      setImmediate(() => markStopped('stopped'))
    },
  }
  Comlink.expose(api, portEndpoint(control))
  await session.start()
  host.startHeartbeats(task.heartbeatMs)
  host.post({ kind: 'ready' })
  const result = await stopped
  data.close()
  control.close()
  return result
}
