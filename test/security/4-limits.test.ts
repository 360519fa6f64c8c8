/**
 * Issue 6, point 4: limits. A body over the limit gets a 413 the client can read while it is still uploading, and
 * what follows is dropped, not kept; headers, message count and nesting are bounded; slow clients are cut off. Every
 * refusal is checked against an exec account: no session saw it, no child was spawned, no file was written.
 */
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { connect, type Socket } from 'node:net'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { assertError, assertNothingHappened, execAccount, footprint, hello, helloBody, mockAccounts, rawPost, rawRequest, sharedSecured, startSecured } from './helper.ts'

const MB = 1024 * 1024
/** the size limits together: one orchestrator for every test that does not need its own timeouts */
const limited = sharedSecured({ accounts: [execAccount()], server: { bodyLimitBytes: MB, maxHeaderBytes: 8 * 1024, maxMessages: 4, maxJsonDepth: 16 } })

interface Upload { status: number; json: any; sent: number; error?: string; cutBeforeEnd: boolean }

/**
 * Streams `total` bytes of body in 64 KB writes, declared or chunked. With `ignoreResponse` it keeps writing after the
 * answer, as a hostile client would, to see where the server stops reading.
 */
function upload(port: number, total: number, opts: { declared: boolean; ignoreResponse?: boolean }): Promise<Upload> {
  return new Promise((resolve) => {
    const headers: Record<string, string | number> = { 'content-type': 'application/json' }
    if (opts.declared) headers['content-length'] = total
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/messages', headers })
    const chunk = Buffer.alloc(64 * 1024, 0x20)
    let sent = 0
    let status = 0
    let json: any
    let stopped = false
    let finished = false
    const done = (error?: string): void => {
      if (finished) return
      finished = true
      stopped = true
      resolve({ status, json, sent, error, cutBeforeEnd: sent < total })
    }
    const pump = (): void => {
      while (!stopped && sent < total) {
        sent += chunk.length
        if (!req.write(chunk)) { req.once('drain', pump); return }
      }
      if (!stopped) req.end()
    }
    req.on('response', (res) => {
      status = res.statusCode ?? 0
      let text = ''
      res.on('data', (d) => { text += d })
      res.on('end', () => {
        try { json = JSON.parse(text) } catch { json = text }
        if (!opts.ignoreResponse) done()
      })
      if (!opts.ignoreResponse) stopped = true
    })
    req.on('error', (err) => done(err.message))
    req.on('close', () => done())
    pump()
  })
}

test('a declared body over the limit gets a 413 request_too_large that the uploading client reads', async () => {
  const sec = await limited()
  const { port } = sec
  const before = await footprint(sec)
  const res = await upload(port, 50 * MB, { declared: true })
  assertError(res, 413, 'request_too_large')
  assert.ok(res.cutBeforeEnd, 'the client was told before it sent everything')
  await assertNothingHappened(sec, before)
})

test('a chunked body that passes the limit gets a 413 request_too_large that the uploading client reads', async () => {
  const sec = await limited()
  const { port } = sec
  const before = await footprint(sec)
  const res = await upload(port, 50 * MB, { declared: false })
  assertError(res, 413, 'request_too_large')
  assert.ok(res.cutBeforeEnd)
  await assertNothingHappened(sec, before)
})

test('a client that ignores the 413 and keeps uploading is cut off; the rest is never read in full', async () => {
  const sec = await limited()
  const { port } = sec
  const before = await footprint(sec)
  for (const declared of [true, false]) {
    // a raw socket that writes 1 GB whatever it is told, as fast as the server reads
    const socket = connect(port, '127.0.0.1')
    const total = 1024 * MB
    let answer = ''
    socket.on('data', (d) => { answer += d })
    socket.write(`POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\ncontent-type: application/json\r\n` +
      (declared ? `content-length: ${total}\r\n\r\n` : 'transfer-encoding: chunked\r\n\r\n'))
    const chunk = Buffer.alloc(256 * 1024, 0x20)
    const framed = declared ? chunk : Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')])
    const started = Date.now()
    let sent = 0
    await new Promise<void>((resolve) => {
      socket.on('close', () => resolve())
      socket.on('error', () => resolve())
      const pump = (): void => {
        while (!socket.destroyed && sent < total) {
          sent += chunk.length
          if (!socket.write(framed)) { socket.once('drain', pump); return }
        }
      }
      pump()
    })
    assert.match(answer, /^HTTP\/1\.1 413 /)
    assert.match(answer, /"request_too_large"/)
    // the server read a few MB after its answer (socket buffers), then closed: not the 1 GB offered (@hono/node-server alone would read 64 MB)
    assert.ok(sent < 48 * MB, `client got ${Math.round(sent / MB)} MB into the socket`)
    assert.ok(Date.now() - started < 10_000)
  }
  await assertNothingHappened(sec, before)
})

/** Writes `head`, calls `onData` on every arrival, resolves with everything read once `until` holds or the socket closes. */
function exchange(port: number, head: string, until: (text: string) => boolean, onData?: (text: string, socket: Socket) => void): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    let text = ''
    const timer = setTimeout(() => socket.destroy(), 5_000)
    const finish = (): void => { clearTimeout(timer); socket.destroy(); resolve(text) }
    socket.on('data', (d) => {
      text += d
      onData?.(text, socket)
      if (until(text)) finish()
    })
    socket.on('close', finish)
    socket.on('error', finish)
    socket.write(head)
  })
}

test('Expect: 100-continue with a body over the limit: 413 at once, no "100 Continue", nothing uploaded', async () => {
  const sec = await limited()
  const { port } = sec
  const before = await footprint(sec)
  const refused = await exchange(port, `POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\ncontent-type: application/json\r\n` +
    `content-length: ${20 * MB}\r\nexpect: 100-continue\r\n\r\n`, (text) => text.includes('request_too_large'))
  assert.match(refused, /^HTTP\/1\.1 413 /)
  assert.doesNotMatch(refused, /100 Continue/)
  await assertNothingHappened(sec, before)
  // a body within the limit is asked for, then served
  const text = await exchange(port, `POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\ncontent-type: application/json\r\n` +
    `content-length: ${Buffer.byteLength(helloBody)}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n`,
  (text) => text.includes('"type":"message"'), (text, socket) => { if (text === 'HTTP/1.1 100 Continue\r\n\r\n') socket.write(helloBody) })
  assert.match(text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK/)
  assert.match(text, /HTTP\/1\.1 200 OK/)
  assert.equal((await footprint(sec)).children - before.children, 1, 'the request let in ran one child')
})

test('headers over maxHeaderBytes are refused 431 in the Anthropic error shape', async () => {
  const sec = await limited()
  const { port } = sec
  const before = await footprint(sec)
  const res = await rawRequest(port, rawPost('/v1/messages', [`Host: 127.0.0.1:${port}`, `x-padding: ${'a'.repeat(9 * 1024)}`]))
  assertError(res, 431, 'request_too_large')
  assert.match(res.headers['request-id'] ?? '', /^req_/)
  // a malformed request line gets the shape too
  assertError(await rawRequest(port, 'NOT A REQUEST\r\n\r\n'), 400, 'invalid_request_error')
  await assertNothingHappened(sec, before)
})

test('more messages than maxMessages, or JSON nested deeper than maxJsonDepth, is a 400 before any session', async () => {
  const sec = await limited()
  const { url } = sec
  const before = await footprint(sec)
  const post = async (body: unknown) => {
    const res = await fetch(`${url}/v1/messages`, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json' } })
    return { status: res.status, json: await res.json() }
  }
  const many = Array.from({ length: 5 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: 'x' }))
  assertError(await post({ ...hello, messages: many }), 400, 'invalid_request_error')
  let deep: unknown = 'x'
  for (let i = 0; i < 20; i++) deep = { a: deep }
  assertError(await post({ ...hello, metadata: { deep } }), 400, 'invalid_request_error')
  // 200 000 levels of nesting in 400 KB: refused, not a stack overflow
  assertError(await post(`{"model":"m","messages":[{"role":"user","content":"x"}],"x":${'['.repeat(200_000)}${']'.repeat(200_000)}}`), 400, 'invalid_request_error')
  await assertNothingHappened(sec, before)
  assert.equal((await post({ ...hello, messages: many.slice(0, 3) })).status, 200)
})

test('a slow-headers client is cut off after headersTimeoutMs with a 408', async (t) => {
  const sec = await startSecured(t, { accounts: [execAccount()], server: { headersTimeoutMs: 300, receiveTimeoutMs: 2_000 } })
  const { port } = sec
  const before = await footprint(sec)
  const socket = connect(port, '127.0.0.1')
  let text = ''
  socket.on('data', (d) => { text += d })
  socket.write(`POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`)
  const dripping = setInterval(() => socket.writable && socket.write('x-drip: 1\r\n'), 100) // never finishes its headers
  t.after(() => clearInterval(dripping))
  const closed = await Promise.race([new Promise((r) => socket.on('close', () => r(true))), sleep(5_000, false)])
  clearInterval(dripping)
  assert.equal(closed, true, 'the connection was closed')
  assert.match(text, /^HTTP\/1\.1 408 /)
  assert.equal(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)).error.type, 'timeout_error')
  await assertNothingHappened(sec, before)
})

test('a slow-body client is cut off after bodyIdleTimeoutMs of silence, and after receiveTimeoutMs in all', async (t) => {
  const sec = await startSecured(t, { accounts: [execAccount()], server: { bodyIdleTimeoutMs: 300, headersTimeoutMs: 500, receiveTimeoutMs: 1_500 } })
  const { port } = sec
  const before = await footprint(sec)
  // silent after 10 bytes
  const idle = await rawRequest(port, `POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"model":`, 5_000)
  assertError(idle, 408, 'timeout_error')
  // never silent for long, but never done: one byte every 100 ms
  const socket = connect(port, '127.0.0.1')
  let text = ''
  socket.on('data', (d) => { text += d })
  socket.write(`POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n`)
  const dripping = setInterval(() => socket.writable && socket.write(' '), 100)
  t.after(() => clearInterval(dripping))
  const started = Date.now()
  const closed = await Promise.race([new Promise((r) => socket.on('close', () => r(true))), sleep(6_000, false)])
  clearInterval(dripping)
  assert.equal(closed, true)
  assert.ok(Date.now() - started >= 1_000, 'not before receiveTimeoutMs')
  assert.match(text, /^HTTP\/1\.1 408 /)
  await assertNothingHappened(sec, before)
})

test('receiveTimeoutMs bounds receiving the request, not the answer: a long streamed answer completes', async (t) => {
  const { url } = await startSecured(t, {
    accounts: mockAccounts(1, { latencyMs: 600, deltas: 4, deltaDelayMs: 200 }),
    server: { headersTimeoutMs: 200, receiveTimeoutMs: 300, bodyIdleTimeoutMs: 200 },
  })
  const res = await fetch(`${url}/v1/messages`, { method: 'POST', body: JSON.stringify({ ...hello, stream: true }), headers: { 'content-type': 'application/json' } })
  assert.equal(res.status, 200)
  const text = await res.text()
  assert.match(text, /event: message_stop/)
})
