import { createClient } from 'redis'
import { startRedis } from '../test/helpers/servers.ts'
const r = await startRedis()
const c = createClient({ url: r.url, disableOfflineQueue: true, socket: { connectTimeout: 500, reconnectStrategy: (n: number) => Math.min(50 * 2 ** n, 500) }, commandOptions: { timeout: 200, rejectInFlight: true } })
for (const ev of ['connect', 'ready', 'end', 'reconnecting']) c.on(ev, () => console.log(Date.now() % 100000, 'event', ev))
c.on('error', (e: Error) => console.log(Date.now() % 100000, 'error', e.constructor.name, e.message))
const p = c.connect(); console.log('isReady', c.isReady)
await p
console.log(await c.ping(), await c.eval('return redis.call("TIME")'))
await r.kill('SIGKILL')
for (let i = 0; i < 3; i++) {
  const t = performance.now()
  try { console.log(await c.get('x')) } catch (e: any) { console.log('get failed', e.constructor.name, e.message, Math.round(performance.now() - t)) }
  await new Promise(r => setTimeout(r, 300))
}
await r.restart()
await new Promise(r => setTimeout(r, 800))
console.log('after restart', c.isReady, await c.get('x').catch((e: Error) => e.message))
// SIGSTOP: hung server
process.kill(r.pid, 'SIGSTOP')
const t = performance.now()
try { await c.get('x') } catch (e: any) { console.log('hung get', e.constructor.name, Math.round(performance.now() - t)) }
process.kill(r.pid, 'SIGCONT')
console.log('after cont', await c.get('x').catch((e: Error) => e.message))
c.destroy()
await r.stop()
// start with redis down
const c2 = createClient({ url: r.url, disableOfflineQueue: true, socket: { connectTimeout: 500, reconnectStrategy: (n: number) => Math.min(50 * 2 ** n, 500) } })
c2.on('error', (e: Error) => console.log('c2 error', e.message))
const cp = c2.connect().then(() => console.log('c2 connected'), (e: Error) => console.log('c2 connect rejected', e.message))
await new Promise(r => setTimeout(r, 700))
try { await c2.get('x') } catch (e: any) { console.log('c2 get', e.constructor.name, e.message) }
c2.destroy()
await cp
