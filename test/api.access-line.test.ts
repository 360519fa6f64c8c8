import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import { pino } from 'pino'
import { accessLineWriter, type AccessFields } from '../src/api/access-line.ts'
import { rememberSecret } from '../src/config/known-secrets.ts'
import { createLogger } from '../src/log.ts'

function capture(): { sink: Writable; lines: string[] } {
  const lines: string[] = []
  const sink = new Writable({ write(chunk, _enc, done) { lines.push(String(chunk)); done() } })
  return { sink, lines }
}

// pino's time differs by the call; everything else must be the same bytes
const sameTime = (line: string): string => line.replace(/"time":\d+/, '"time":0')

const records: AccessFields[] = [
  { reqId: 'req_1', account: 'acc01', strategy: 'round-robin', model: 'claude-sonnet-4-5', stream: false, queueMs: 0, durationMs: 3, attempts: 1, status: 200, code: undefined },
  { reqId: 'req_2', account: undefined, strategy: 'least-busy', model: 'evil\n{"level":60,"msg":"forged"}\u2028"\\', stream: true, queueMs: 12.5, durationMs: NaN, attempts: 2, status: 529, code: 'AGYC_QUEUE_FULL' },
  { reqId: 'req_3_with_a_request_id_longer_than_forty_two_characters', account: 'ü-account', strategy: 'quota', model: `${'x'.repeat(120)}"`, stream: false, queueMs: Infinity, durationMs: 0, attempts: 1, status: 499, code: 'AGYC_CANCELLED' },
]

test('the access line written by hand is the line pino writes, byte for byte, a turn\'s lines in one write', async () => {
  rememberSecret('sk-access-line-secret-1')
  const byPino = capture()
  const byHand = capture()
  const pinoLog = createLogger({ level: 'info', pretty: false }, byPino.sink).child({}, { redact: { paths: [] } })
  const write = accessLineWriter(createLogger({ level: 'info', pretty: false }, byHand.sink).child({}, { redact: { paths: [] } }))
  const all = [...records, { ...records[0], model: 'model with sk-access-line-secret-1 in it' }]
  for (const fields of all) {
    pinoLog.info({ ...fields }, 'request')
    write(fields)
  }
  assert.equal(byHand.lines.length, 0, 'held until the end of the turn')
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(byHand.lines.length, 1, 'one write for the turn')
  const hand = byHand.lines[0].split(/(?<=\n)/)
  assert.equal(hand.length, all.length)
  for (let i = 0; i < all.length; i++) assert.equal(sameTime(hand[i]), sameTime(byPino.lines[i]), `record ${i}`)
  assert.match(hand.at(-1)!, /\[redacted\]/, 'the scrubbing hook runs on the hand-written line too')
  assert.equal(JSON.parse(hand[1]).model, records[1].model, 'a client string stays one field')
})

test('a lone surrogate in a client string is escaped (pino on Node 24 writes it raw; from Node 25 it escapes it too)', async () => {
  const { sink, lines } = capture()
  accessLineWriter(createLogger({ level: 'info', pretty: false }, sink))({ ...records[0], model: '\ud800 lone' })
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(JSON.parse(lines[0]).model, '\ud800 lone')
})

test('the access line follows the level and falls back to pino for a logger it cannot copy', () => {
  const { sink, lines } = capture()
  const quiet = createLogger({ level: 'warn', pretty: false }, sink)
  accessLineWriter(quiet)(records[0])
  assert.equal(lines.length, 0, 'info is off: no line')
  const mixed = pino({ mixin: () => ({ extra: 1 }) }, sink)
  accessLineWriter(mixed)(records[0])
  assert.equal(JSON.parse(lines[0]).extra, 1, 'a mixin logger keeps pino\'s own path')
  assert.equal(JSON.parse(lines[0]).reqId, 'req_1')
})
