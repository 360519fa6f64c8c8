import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { codes, errorBody, codeNames } from '../src/errors.ts'

test('every error code is in the error table of docs/api.md with its status and type', () => {
  const table = readFileSync(new URL('../docs/api.md', import.meta.url), 'utf8')
  for (const code of codeNames) {
    const row = table.split('\n').find((line) => line.startsWith(`| \`${code}\` |`))
    assert.ok(row, `${code} is documented`)
    assert.match(row, new RegExp(`\\| ${codes[code].status} \\| ${codes[code].type} \\|`), `${code} row matches the table`)
  }
})

test('every code maps to the Anthropic error shape', () => {
  for (const code of codeNames) {
    const body = JSON.parse(errorBody(code, 'm'))
    assert.deepEqual(Object.keys(body), ['type', 'error'])
    assert.equal(body.type, 'error')
    assert.deepEqual(body.error, { type: codes[code].type, message: 'm' })
  }
})
