/**
 * Issue 6, point 7, the config side: with `confineStateDirs`, every account's state directory must lie under
 * `stateRoot`, with no `..` and no symbolic link on the way; no two accounts ever share one, nested or not. (Creating
 * the directories 0700, exec placeholders and the child environment belong to the session kinds, issue 3.)
 */
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { ConfigError, parseConfig } from '../../src/config/load.ts'
import { hello, startSecured } from './helper.ts'

function sandbox(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'agyc-state-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function problems(raw: unknown, baseDir: string): string[] {
  try {
    parseConfig(raw, baseDir)
    return []
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems]
    throw err
  }
}

const account = (id: string, stateDir?: string) => ({ id, session: { kind: 'mock' }, ...(stateDir ? { stateDir } : {}) })

test('confined state directories: ".." escapes and paths outside stateRoot are refused at load', (t) => {
  const dir = sandbox(t)
  const confined = (accounts: unknown[]) => problems({ stateRoot: 'state', confineStateDirs: true, accounts }, dir)
  assert.deepEqual(confined([account('a'), account('b', 'state/b')]), [])
  assert.match(confined([account('a', 'state/../outside')])[0], /^accounts\[0\]\.stateDir: .*"\.\."/)
  assert.match(confined([account('a', 'state/x/../a')])[0], /^accounts\[0\]\.stateDir: .*"\.\."/) // even when it lands inside
  assert.match(confined([account('a', '/etc/agyc')])[0], /^accounts\[0\]\.stateDir: .* is not under stateRoot/)
  assert.match(confined([account('a', 'state')])[0], /^accounts\[0\]\.stateDir: .* is not under stateRoot/) // the root itself
  assert.match(confined([account('a', 'statex/a')])[0], /is not under stateRoot/) // a sibling with the same prefix
  // without confinement an explicit directory elsewhere is the owner's choice (an existing CLI login, say)
  assert.deepEqual(problems({ stateRoot: 'state', accounts: [account('a', '/var/tmp/agyc-a')] }, dir), [])
})

test('confined state directories: a planted symbolic link on the way is refused at load', (t) => {
  const dir = sandbox(t)
  mkdirSync(join(dir, 'state'))
  mkdirSync(join(dir, 'elsewhere'))
  symlinkSync(join(dir, 'elsewhere'), join(dir, 'state', 'a')) // the account's own directory is a link
  symlinkSync(join(dir, 'elsewhere'), join(dir, 'state', 'group')) // a parent on the way is a link
  const confined = (accounts: unknown[]) => problems({ stateRoot: 'state', confineStateDirs: true, accounts }, dir)
  assert.match(confined([account('a')])[0], /^accounts\[0\]\.stateDir: ".*state\/a" is a symbolic link/)
  assert.match(confined([account('b', 'state/group/b')])[0], /^accounts\[0\]\.stateDir: ".*state\/group" is a symbolic link/)
  assert.deepEqual(confined([account('c')]), []) // not there yet: nothing planted
})

test('two accounts never share a state directory, equal or nested', (t) => {
  const dir = sandbox(t)
  assert.match(problems({ accounts: [account('a', 'x'), account('b', 'x')] }, dir)[0], /^accounts\[1\]\.stateDir: .* already the state directory of accounts\[0\]/)
  const nested = problems({ accounts: [account('a', 'x'), account('b', 'x/inner')] }, dir)
  assert.match(nested[0], /^accounts\[1\]\.stateDir: .* lies inside the state directory of accounts\[0\]/)
  assert.deepEqual(problems({ accounts: [account('a', 'x'), account('b', 'xy')] }, dir), [])
})

test('a request naming a state directory, a path or a file writes nothing outside the state root', async (t) => {
  const { url, dir } = await startSecured(t, { stateRoot: 'state', confineStateDirs: true, accounts: [account('a'), account('b')] })
  const escape = join(tmpdir(), `agyc-escape-${process.pid}`)
  const before = readdirSync(dir).sort()
  const steer = { stateDir: escape, cwd: escape, requestFile: `${escape}/req.json`, path: '../../../../tmp/agyc-escape' }
  const res = await fetch(`${url}/v1/messages`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-agyc-state-dir': escape },
    body: JSON.stringify({ ...hello, ...steer, metadata: { ...steer }, messages: [{ role: 'user', content: `{stateDir} {requestFile} ${escape}` }] }),
  })
  assert.equal(res.status, 200)
  assert.equal(existsSync(escape), false)
  assert.deepEqual(readdirSync(dir).sort(), before)
})
