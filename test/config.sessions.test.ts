import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { test } from 'node:test'
import { ConfigError, loadConfigFile, parseConfig } from '../src/config/load.ts'

const ROOT = new URL('..', import.meta.url).pathname

function problems(raw: unknown): string[] {
  try {
    parseConfig(raw, '/tmp')
  } catch (err) {
    assert.ok(err instanceof ConfigError)
    return [...err.problems]
  }
  assert.fail('expected the config to be refused')
}

test('an unknown session kind is refused with the list of kinds', () => {
  const [line] = problems({ accounts: [{ id: 'a', session: { kind: 'shell' } }] })
  assert.match(line, /^accounts\[0\]\.session/)
  for (const kind of ['mock', 'exec', 'stdio', 'http']) assert.ok(line.includes(`"${kind}"`), `${kind} is listed: ${line}`)
})

test('session fields are checked, path by path', () => {
  assert.deepEqual(problems({ accounts: [{ id: 'a', session: { kind: 'exec' } }] }).map((l) => l.split(':')[0]), ['accounts[0].session.command'])
  assert.ok(problems({ accounts: [{ id: 'a', session: { kind: 'stdio', command: 'x', shell: true } }] })[0].startsWith('accounts[0].session'))
  assert.ok(problems({ accounts: [{ id: 'a', session: { kind: 'http', baseUrl: 'file:///etc/passwd' } }] })[0].startsWith('accounts[0].session.baseUrl'))
  assert.ok(problems({ accounts: [{ id: 'a', session: { kind: 'http', baseUrl: 'http://x', apiKey: 'sk-inline' } }] })[0].startsWith('accounts[0].session.apiKey'), 'keys come from the environment, never inline')
})

test('prewarm is refused when the argv depends on the request', () => {
  const [line] = problems({ accounts: [{ id: 'a', session: { kind: 'exec', command: 'x', args: ['-p', '{prompt}'], prewarm: 2 } }] })
  assert.match(line, /^accounts\[0\]\.session\.prewarm: /)
})

test('config.example.json has one account of each kind, its fixtures resolved from the config folder', () => {
  const config = loadConfigFile(`${ROOT}config.example.json`)
  const kinds = new Set(config.accounts.map((a) => a.session.kind))
  for (const kind of ['mock', 'exec', 'stdio', 'http']) assert.ok(kinds.has(kind as never), `an example ${kind} account`)
  for (const account of config.accounts) {
    const session = account.session
    const args = session.kind === 'exec' || session.kind === 'stdio' ? session.args : session.kind === 'http' ? session.start?.args ?? [] : []
    for (const arg of args.filter((a) => a.endsWith('.mjs'))) assert.ok(existsSync(arg), `${arg} exists`)
  }
})
