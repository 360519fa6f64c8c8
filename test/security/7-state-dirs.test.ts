/**
 * Issue 6, point 7, the config side: with `confineStateDirs`, every account's state directory must lie under
 * `stateRoot`, with no `..` and no symbolic link on the way, checked at load and again, level by level, when the worker
 * creates the directory (a link planted in between is refused, never followed); no two accounts ever share one.
 */
import assert from 'node:assert/strict'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { test, type TestContext } from 'node:test'
import { ConfigError, parseConfig } from '../../src/config/load.ts'
import { startOrchestrator } from '../../src/orchestrator.ts'
import { ensureStateDir, privateDir, writePrivateFile } from '../../src/config/state-dir.ts'
import { eventually, fixturePids } from '../helpers/orchestrator.ts'
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

test('a symbolic link planted after load is refused when the directory is created: nothing is written through it', async (t) => {
  const dir = sandbox(t)
  const agent = new URL('../fixtures/exec-agent.mjs', import.meta.url).pathname
  const elsewhere = join(dir, 'elsewhere')
  mkdirSync(elsewhere)
  const exec = (id: string, stateDir?: string) => ({ ...account(id, stateDir), session: { kind: 'exec', command: 'node', args: [agent] } })
  // loaded while nothing is planted: the load-time check passes
  const config = parseConfig({
    log: { level: 'fatal' }, server: { port: 0 }, dispatcher: { queueTimeoutMs: 300 }, stateRoot: 'state', confineStateDirs: true,
    accounts: [exec('a'), exec('b', 'state/group/b'), exec('c')],
  }, dir)
  // then, before the accounts start, links appear: the account's own directory, a level on the way, its tmp/
  mkdirSync(join(dir, 'state', 'c'), { recursive: true, mode: 0o700 })
  symlinkSync(elsewhere, join(dir, 'state', 'a'))
  symlinkSync(elsewhere, join(dir, 'state', 'group'))
  symlinkSync(elsewhere, join(dir, 'state', 'c', 'tmp'))
  const orch = await startOrchestrator(config, { logDestination: new Writable({ write(_c, _e, done) { done() } }) })
  t.after(() => orch.close(2_000))
  for (const account of orch.dispatcher.accounts) {
    await eventually(() => /symbolic link/.test(account.lastError ?? ''), `account ${account.id} refuses its planted link`)
    assert.notEqual(account.state, 'up')
  }
  // no account can serve: the request is answered (529), and no child starts for it
  const res = await fetch(`${orch.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(hello) })
  assert.equal(res.status, 529)
  await res.text()
  assert.deepEqual(readdirSync(elsewhere), [], 'nothing was written through a link')
  assert.equal(fixturePids(join(dir, 'state')).length + fixturePids(elsewhere).length, 0, 'no child was started')
  for (const account of orch.dispatcher.accounts) assert.equal(account.childPids.size, 0)
})

test('state directories are created 0700 level by level; a file planted as a CLI settings file is not written through', (t) => {
  const dir = sandbox(t)
  const root = join(dir, 'state')
  const { stateDir, tmpDir } = ensureStateDir(join(root, 'x', 'y'), root)
  for (const d of [join(root, 'x'), stateDir, tmpDir]) assert.equal(statSync(d).mode & 0o777, 0o700, d)
  // a link where a settings file goes: refused (O_NOFOLLOW), the target untouched
  const target = join(dir, 'target')
  writeFileSync(target, 'original')
  symlinkSync(target, join(stateDir, 'settings.json'))
  assert.throws(() => writePrivateFile(join(stateDir, 'settings.json'), 'overwritten'), /symbolic link/)
  assert.equal(readFileSync(target, 'utf8'), 'original')
  symlinkSync(join(dir, 'elsewhere-dir'), join(stateDir, '.codex'))
  assert.throws(() => privateDir(stateDir, '.codex'), /symbolic link/)
  assert.equal(existsSync(join(dir, 'elsewhere-dir')), false)
  // a root others can write to cannot confine anything (they could swap a level after it was checked)
  mkdirSync(join(dir, 'open'), { mode: 0o777 })
  chmodSync(join(dir, 'open'), 0o777)
  assert.throws(() => ensureStateDir(join(dir, 'open', 'a'), join(dir, 'open')), /writable by nobody else/)
})
