/**
 * The tool bridge's books on the main thread (src/dispatch/tool-calls.ts): which account holds a tool_use_id, a
 * continuation's ids from its last user turn, and one slot per parked conversation however many calls it made.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ParkedCalls, ToolCallDirectory, toolResultIds } from '../src/dispatch/tool-calls.ts'

test('a continuation is the tool_result blocks of the last user turn, and only those', () => {
  assert.deepEqual(toolResultIds({ messages: [
    { role: 'user', content: 'weather?' },
    { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_a' }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_a' }, { type: 'tool_result', tool_use_id: 'toolu_b' }, { type: 'text', text: 'go on' }] },
  ] }), ['toolu_a', 'toolu_b'])
  assert.deepEqual(toolResultIds({ messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'x' }] }, { role: 'assistant', content: 'done' }] }), [], 'not the last turn')
  assert.deepEqual(toolResultIds({ messages: [{ role: 'user', content: 'plain' }] }), [])
})

test('the directory names a holder only when one account holds every id of the continuation', () => {
  const directory = new ToolCallDirectory<string>()
  directory.park(['toolu_a', 'toolu_b'], 'acc1')
  directory.park(['toolu_c'], 'acc2')
  assert.equal(directory.holder(['toolu_a', 'toolu_b']), 'acc1')
  assert.equal(directory.holder(['toolu_a', 'toolu_c']), undefined, 'two accounts: served fresh')
  assert.equal(directory.holder(['toolu_zzz']), undefined, 'unknown: served fresh')
  assert.equal(directory.holder([]), undefined)
  assert.deepEqual(directory.forget('acc1').sort(), ['toolu_a', 'toolu_b'])
  assert.equal(directory.holder(['toolu_a']), undefined, 'a dead worker\'s calls are gone')
  assert.equal(directory.release(['toolu_c', 'nope']), 1)
  assert.equal(directory.size, 0)
})

test('a parked conversation holds one slot whatever its number of calls, and frees it when its last call ends', () => {
  const parked = new ParkedCalls()
  parked.park(['toolu_a', 'toolu_b'])
  parked.park(['toolu_c'])
  assert.equal(parked.calls, 3)
  assert.equal(parked.conversations, 2)
  assert.deepEqual(parked.unpark(['toolu_a']), { gone: ['toolu_a'], freed: 0 })
  assert.deepEqual(parked.unpark(['toolu_b', 'toolu_b', 'toolu_x']), { gone: ['toolu_b'], freed: 1 })
  assert.deepEqual(parked.clear(), ['toolu_c'])
  assert.equal(parked.conversations, 0)
})
