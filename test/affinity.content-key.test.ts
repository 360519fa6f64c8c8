/**
 * Issue 18: the content key hashes only what is needed: a conversation's long system prompt and first user turn by
 * their ends and length, the same turn after turn, so a 20 KB Claude Code system prompt is not hashed whole per request.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { affinityKey } from '../src/dispatch/affinity.ts'

const system = `You are Claude Code. ${'Rules of the house. '.repeat(1_000)}End of rules.`
const turn = (first: string, more = 0) => ({
  model: 'm', system,
  messages: [{ role: 'user', content: first }, ...Array.from({ length: more }, (_, i) => ({ role: i % 2 ? 'user' : 'assistant', content: `turn ${i}` }))],
})

test('the content key is the same every turn of a conversation and differs between conversations', () => {
  const first = affinityKey({}, turn('fix the bug in parser.ts'))
  const third = affinityKey({}, turn('fix the bug in parser.ts', 2))
  assert.equal(first.key, third.key)
  assert.equal(first.follow, false)
  assert.equal(third.follow, true)
  assert.notEqual(affinityKey({}, turn('add a test for lexer.ts', 2)).key, third.key)
  const otherSystem = { ...turn('fix the bug in parser.ts', 2), system: system.replace('End of rules.', 'The end.') }
  assert.notEqual(affinityKey({}, otherSystem).key, third.key, 'a system prompt that differs at its end is another conversation')
  const longer = { ...turn('fix the bug in parser.ts', 2), system: system.replace('Rules', 'Rules!') }
  assert.notEqual(affinityKey({}, longer).key, third.key, 'a different length is another conversation')
})
