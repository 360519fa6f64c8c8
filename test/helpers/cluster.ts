/** Stores on a real redis-server for the cluster tests, closed in `t.after`. */
import type { TestContext } from 'node:test'
import { Store } from '../../src/cluster/store.ts'
import { startRedis, type RedisServer } from './servers.ts'

export async function redisFor(t: TestContext): Promise<RedisServer> {
  const redis = await startRedis()
  t.after(() => redis.stop())
  return redis
}

let prefixes = 0
/** A fresh key prefix per test, so tests sharing a server never see each other's keys. */
export const freshPrefix = (): string => `t${process.pid}-${++prefixes}:`

/** `n` stores (as on `n` nodes) on one server and prefix, connected. */
export async function storesFor(t: TestContext, url: string, n: number, options: { keyPrefix?: string; commandTimeoutMs?: number; probeMs?: number } = {}): Promise<Store[]> {
  const keyPrefix = options.keyPrefix ?? freshPrefix()
  const stores = Array.from({ length: n }, () => new Store({ url, keyPrefix, commandTimeoutMs: options.commandTimeoutMs ?? 250, probeMs: options.probeMs }))
  t.after(() => Promise.all(stores.map((s) => s.close())))
  for (const s of stores) s.start()
  for (const s of stores) if (!(await s.ready(5_000))) throw new Error('store never connected')
  return stores
}
