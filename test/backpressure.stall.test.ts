/**
 * Issue 16, point 3: back-pressure end to end. A client that stops reading its stream makes the worker hold that
 * request's output (bounded), then stop reading its session, so the CLI child blocks on its own writes instead of
 * anybody buffering for it; stalled past `server.writeStallTimeoutMs` the client is cut, its request cancelled in the
 * worker and its slot freed, and the access line says why.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { test } from 'node:test'
import { eventually, post, start } from './helpers/orchestrator.ts'

const AGENT = new URL('./fixtures/stdio-agent.mjs', import.meta.url).pathname
const MB = 1024 * 1024
const FLOOD = 96 * MB

/** the fixture's own count of what it managed to write */
function floodProgress(dir: string): number {
  const walk = (d: string): string | undefined => {
    for (const name of readdirSync(d)) {
      const path = join(d, name)
      if (name === 'flood-progress') return path
      if (statSync(path).isDirectory()) {
        const found = walk(path)
        if (found) return found
      }
    }
    return undefined
  }
  const file = walk(dir)
  return file ? Number(readFileSync(file, 'utf8')) : 0
}

test('a client that stops reading pauses the stdio child, and is cut at the stall limit with its request cancelled', { timeout: 60_000 }, async (t) => {
  const { url, dir, logs, orch } = await start(t, {
    server: { writeStallTimeoutMs: 1_500 },
    accounts: [{
      id: 'a', maxConcurrency: 2,
      session: { kind: 'stdio', command: 'node', args: [AGENT], idleTimeoutMs: 30_000, killGraceMs: 300, startTimeoutMs: 5_000 },
    }],
  })
  const port = Number(new URL(url).port)
  const body = JSON.stringify({ model: 'claude-test-1', max_tokens: 64, stream: true, messages: [{ role: 'user', content: `[[flood ${FLOOD}]]` }] })
  // a client that reads the status line and then nothing more, as a suspended Claude Code does
  let response: import('node:http').IncomingMessage | undefined
  await new Promise<void>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/messages', headers: { 'content-type': 'application/json' } }, (res) => {
      assert.equal(res.statusCode, 200)
      res.pause()
      res.socket.pause()
      response = res
      resolve()
    })
    req.on('error', reject)
    req.end(body)
  })
  await eventually(() => floodProgress(dir) > 0, 'the child started writing')
  await eventually(() => logs.some((l) => l.msg === 'request' && l.code === 'AGYC_WRITE_STALLED'), 'the stalled client is cut', 10_000)
  // the client reads again: what reaches it ends without the stream's end (the connection was cut)
  const ended = await new Promise<string>((resolve) => {
    let tail = ''
    response!.setEncoding('utf8')
    response!.on('data', (chunk: string) => { tail = (tail + chunk).slice(-200) })
    response!.on('close', () => resolve(tail))
    response!.resume()
    response!.socket.resume()
  })
  assert.doesNotMatch(ended, /message_stop/, 'the stream was cut, not finished')

  const written = floodProgress(dir)
  assert.ok(written < FLOOD / 3, `the child was paused rather than buffered: it wrote ${(written / MB).toFixed(1)} MB of ${FLOOD / MB} MB`)
  const line = logs.find((l) => l.msg === 'request' && l.code === 'AGYC_WRITE_STALLED')
  assert.ok(line, 'the access line names the stall')
  assert.equal(line.status, 499)
  const account = orch.dispatcher.accounts[0]
  await eventually(() => account.assigned === 0, 'the slot is free')
  // and the child, told to cancel, stopped writing; the account serves the next request
  const next = await post(url, '/v1/messages', JSON.stringify({ model: 'claude-test-1', max_tokens: 64, messages: [{ role: 'user', content: 'hello' }] }), { 'content-type': 'application/json' })
  assert.equal(next.status, 200, next.text)
})

test('a client that reads slowly but keeps reading is not cut, and gets every byte', { timeout: 60_000 }, async (t) => {
  const { url } = await start(t, {
    server: { writeStallTimeoutMs: 5_000 },
    accounts: [{ id: 'a', maxConcurrency: 1, session: { kind: 'stdio', command: 'node', args: [AGENT], killGraceMs: 300 } }],
  })
  const port = Number(new URL(url).port)
  const total = 4 * MB
  const body = JSON.stringify({ model: 'claude-test-1', max_tokens: 64, stream: true, messages: [{ role: 'user', content: `[[flood ${total}]]` }] })
  const received = await new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/messages', headers: { 'content-type': 'application/json' } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      // pauses of 100 ms, well inside the stall limit
      res.on('data', (chunk: string) => {
        text += chunk
        res.pause()
        setTimeout(() => res.resume(), 100)
      })
      res.on('end', () => resolve(text))
      res.on('close', () => { if (!res.complete) reject(new Error('the slow reader was cut')) })
    })
    req.on('error', reject)
    req.end(body)
  })
  assert.match(received, /event: message_stop/)
  const deltas = received.match(/"text_delta","text":"y+"/g) ?? []
  assert.equal(deltas.length, total / (16 * 1024), 'every delta arrived')
})
