/** Issue 16, point 5: a streamed answer honours the client's `Connection: close` (the connection ends with it). */
import assert from 'node:assert/strict'
import { Agent, request } from 'node:http'
import { test } from 'node:test'
import { hello, mockAccounts, start } from './helpers/orchestrator.ts'

function streamOnce(port: number, connection: string): Promise<{ header: string | undefined; socketClosed: boolean; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/messages', agent: new Agent({ keepAlive: true }),
      headers: { 'content-type': 'application/json', connection } }, (res) => {
      const socket = res.socket
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => {
        // the server ends a `close` connection right after the answer (wait for it, bounded); a keep-alive one stays open
        const settle = (): void => resolve({ header: res.headers.connection, socketClosed: socket.destroyed || socket.readableEnded, body })
        if (socket.destroyed || socket.readableEnded) return settle()
        const timer = setTimeout(settle, connection === 'close' ? 5_000 : 300)
        socket.once('end', () => { clearTimeout(timer); settle() })
        socket.once('close', () => { clearTimeout(timer); settle() })
      })
    })
    req.on('error', reject)
    req.end(JSON.stringify({ ...hello, stream: true }))
  })
}

test('a stream honours Connection: close, and stays keep-alive otherwise', async (t) => {
  const { url } = await start(t, { accounts: mockAccounts(1) })
  const port = Number(new URL(url).port)
  const closed = await streamOnce(port, 'close')
  assert.match(closed.body, /event: message_stop/)
  assert.equal(closed.header, 'close')
  assert.equal(closed.socketClosed, true, 'the server ended the connection')
  const kept = await streamOnce(port, 'keep-alive')
  assert.equal(kept.header, 'keep-alive')
  assert.equal(kept.socketClosed, false)
})
