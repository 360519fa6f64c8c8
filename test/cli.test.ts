import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { test, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { ConfigError, loadConfigFile } from '../src/config/load.ts'
import { eventually, isAlive } from './helpers/orchestrator.ts'
import { runAgyc } from './helpers/process.ts'

const AGYC = fileURLToPath(new URL('../bin/agyc', import.meta.url))

const agyc = runAgyc

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'agyc-cli-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const mock = (id: string) => ({ id, maxConcurrency: 2, session: { kind: 'mock' } })

test('agyc --help and every command --help print usage and exit 0', async () => {
  const top = await agyc(['--help'])
  assert.equal(top.code, 0)
  for (const command of ['start', 'validate', 'status', 'bench']) {
    assert.match(top.stdout, new RegExp(`^  ${command} `, 'm'))
    const help = await agyc([command, '--help'])
    assert.equal(help.code, 0, `${command} --help: ${help.stderr}`)
    assert.match(help.stdout, new RegExp(`^usage: agyc ${command}`))
  }
  const unknown = await agyc(['frobnicate'])
  assert.equal(unknown.code, 2)
})

test('agyc validate accepts a good file and prints the start-up lines for a bad one, exiting 2', async (t) => {
  const dir = tempDir(t)
  const good = join(dir, 'good.json')
  writeFileSync(good, JSON.stringify({ accounts: [mock('a1'), mock('a2')] }))
  const ok = await agyc(['validate', good])
  assert.equal(ok.code, 0)
  assert.match(ok.stdout, /ok/)

  const bad = join(dir, 'bad.json')
  writeFileSync(bad, JSON.stringify({ dispatcher: { strategy: 'fastest' }, accounts: [mock('a1'), { ...mock('a1'), maxConcurrency: -1 }] }))
  let expected: readonly string[] = []
  try { loadConfigFile(bad) } catch (err) { expected = (err as ConfigError).problems }
  assert.ok(expected.length >= 2)
  const refused = await agyc(['validate', bad])
  assert.equal(refused.code, 2)
  assert.deepEqual(refused.stderr.trimEnd().split('\n'), expected)

  // start refuses the same file with the same lines
  const start = await agyc(['start', '--config', bad, '--port', '0'])
  assert.equal(start.code, 2)
  assert.equal(start.stderr, refused.stderr)

  assert.equal((await agyc(['validate'])).code, 2)
})

test('a missing {"fromEnv"} variable of an account stops start-up at once, with one line naming the variable', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'config.json')
  writeFileSync(file, JSON.stringify({
    accounts: [
      { id: 'h1', session: { kind: 'http', baseUrl: 'http://127.0.0.1:9', apiKey: { fromEnv: 'AGYC_TEST_NEVER_SET_KEY' } } },
      { id: 'e1', session: { kind: 'exec', command: 'node', args: ['-e', ''], env: { TOKEN: { fromEnv: 'AGYC_TEST_NEVER_SET_TOKEN' } } } },
      mock('m1'),
    ],
  }))
  const expected = [
    'accounts[0].session.apiKey: environment variable AGYC_TEST_NEVER_SET_KEY is not set',
    'accounts[1].session.env.TOKEN: environment variable AGYC_TEST_NEVER_SET_TOKEN is not set',
  ]
  // a config error, not a worker that fails to start its session and is restarted forever
  const started = await agyc(['start', '--config', file, '--port', '0'])
  assert.equal(started.code, 2)
  assert.deepEqual(started.stderr.trimEnd().split('\n'), expected)
  assert.equal(started.stdout.includes('"listening"'), false, 'it never listened')
  const validated = await agyc(['validate', file])
  assert.equal(validated.code, 2)
  assert.deepEqual(validated.stderr.trimEnd().split('\n'), expected)
  // set, the same file starts
  const ok = await agyc(['validate', file], { AGYC_TEST_NEVER_SET_KEY: 'k', AGYC_TEST_NEVER_SET_TOKEN: 't' })
  assert.equal(ok.code, 0, ok.stderr)
})

/** Runs `agyc start` and resolves with its URL once it logs that it listens. */
async function startAgyc(t: TestContext, configFile: string): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const child = spawn(AGYC, ['start', '--config', configFile, '--port', '0', '--host', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => { stderr += d })
  t.after(async () => {
    if (child.exitCode === null && child.pid && isAlive(child.pid)) {
      child.kill('SIGKILL')
      await new Promise((r) => child.once('close', r))
    }
  })
  const lines = createInterface({ input: child.stdout! })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agyc start did not listen: ${stderr}`)), 20_000)
    lines.on('line', (line) => {
      const entry = JSON.parse(line) as { msg?: string; url?: string }
      if (entry.msg === 'listening' && entry.url) {
        clearTimeout(timer)
        resolve(entry.url)
      }
    })
    child.once('exit', (code) => reject(new Error(`agyc start exited ${code}: ${stderr}`)))
  })
  return { child, url, stderr: () => stderr }
}

const accountIds = async (url: string): Promise<string[]> =>
  ((await (await fetch(`${url}/admin/accounts`)).json() as { accounts: { id: string }[] }).accounts).map((a) => a.id).sort()

test('agyc start serves, reloads on SIGHUP (refusing a bad file), and stops on SIGTERM with exit 0', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'config.json')
  writeFileSync(file, JSON.stringify({ log: { level: 'info' }, accounts: [mock('s1'), mock('s2')] }))
  const { child, url, stderr } = await startAgyc(t, file)
  assert.equal((await fetch(`${url}/healthz`)).status, 200)
  assert.deepEqual(await accountIds(url), ['s1', 's2'])

  writeFileSync(file, JSON.stringify({ log: { level: 'info' }, accounts: [mock('s2'), mock('s3')] }))
  child.kill('SIGHUP')
  await eventually(async () => (await accountIds(url)).join() === 's2,s3', 'SIGHUP applied the new accounts', 10_000)

  writeFileSync(file, JSON.stringify({ accounts: [{ id: 's9' }] }))
  child.kill('SIGHUP')
  await eventually(() => /accounts\[0\]\.session/.test(stderr()), 'SIGHUP with a bad file printed its problems', 10_000)
  assert.deepEqual(await accountIds(url), ['s2', 's3'])

  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  child.kill('SIGTERM')
  assert.equal(await exited, 0)
})

test('agyc status prints a table of the accounts of a running orchestrator; unreachable exits 1', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'config.json')
  writeFileSync(file, JSON.stringify({ log: { level: 'info' }, accounts: [mock('t1'), mock('t2'), mock('t3')] }))
  const { url } = await startAgyc(t, file)
  const res = await fetch(`${url}/v1/messages`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
  })
  assert.equal(res.status, 200)

  const status = await agyc(['status', '--url', url])
  assert.equal(status.code, 0, status.stderr)
  const lines = status.stdout.trimEnd().split('\n')
  assert.match(lines[0], /^3\/3 accounts up/)
  const table = lines.slice(2)
  assert.match(table[0], /^ACCOUNT\s+STATE\s+HEALTH/)
  assert.deepEqual(table.slice(1).map((l) => l.split(/\s+/).slice(0, 2)), [['t1', 'up'], ['t2', 'up'], ['t3', 'up']])

  const viaEnv = await agyc(['status', '--json'], { AGYC_URL: url })
  assert.equal(viaEnv.code, 0)
  assert.equal((JSON.parse(viaEnv.stdout) as { accounts: unknown[] }).accounts.length, 3)

  const unreachable = await agyc(['status', '--url', 'http://127.0.0.1:9'])
  assert.equal(unreachable.code, 1)
})

test('agyc with no command prints the usage on stderr and exits 2', async () => {
  const bare = await agyc([])
  assert.equal(bare.code, 2)
  assert.match(bare.stderr, /^usage: agyc <command>/m)
  assert.equal(bare.stdout, '')
})

test('agyc validate names the file in its login hint when it is not the default one', async (t) => {
  const dir = tempDir(t)
  const probe = fileURLToPath(new URL('./fixtures/login-probe.mjs', import.meta.url))
  const file = join(dir, 'my agents.json')
  writeFileSync(file, JSON.stringify({ accounts: [{ id: 'one', session: { kind: 'claude-code', command: probe } }] }))
  const ran = await agyc(['validate', file])
  assert.equal(ran.code, 0, ran.stderr)
  assert.ok(ran.stderr.includes(`run "agyc accounts login one --config '${file}'"`), ran.stderr)
})

test('agyc status authenticates with --key or AGYC_ADMIN_KEY when admin keys are configured', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'config.json')
  const adminKey = 'admin-key-for-the-cli-test-0123'
  writeFileSync(file, JSON.stringify({ log: { level: 'info' }, server: { auth: { adminKeys: [adminKey] } }, accounts: [mock('k1')] }))
  const { url } = await startAgyc(t, file)
  const refused = await agyc(['status', '--url', url], { AGYC_ADMIN_KEY: '' })
  assert.equal(refused.code, 1)
  assert.match(refused.stderr, /answered 401 \(pass an admin key: --key KEY or AGYC_ADMIN_KEY\)/)
  const withFlag = await agyc(['status', '--url', url, '--key', adminKey], { AGYC_ADMIN_KEY: '' })
  assert.equal(withFlag.code, 0, withFlag.stderr)
  assert.match(withFlag.stdout, /^1\/1 accounts up/)
  const withEnv = await agyc(['status', '--url', url], { AGYC_ADMIN_KEY: adminKey })
  assert.equal(withEnv.code, 0, withEnv.stderr)
  assert.match((await agyc(['status', '--help'])).stdout, /--key KEY .*\$AGYC_ADMIN_KEY/)
})

test('agyc loads only the command it runs', async (t) => {
  const dir = tempDir(t)
  // a preload that records every module of this checkout the process resolves
  const hook = join(dir, 'record.mjs')
  writeFileSync(hook, `import { registerHooks } from 'node:module'
import { appendFileSync } from 'node:fs'
registerHooks({ resolve(specifier, context, next) {
  const result = next(specifier, context)
  if (result.url.includes('/src/')) appendFileSync(process.env.AGYC_TEST_LOADED, result.url.replace(/^.*\\/src\\//, 'src/') + '\\n')
  return result
} })
`)
  const loaded = async (args: string[]): Promise<string[]> => {
    const list = join(dir, `loaded-${args[0]}.txt`)
    writeFileSync(list, '')
    await agyc(args, { NODE_OPTIONS: `--import=${hook}`, AGYC_TEST_LOADED: list })
    return readFileSync(list, 'utf8').split('\n').filter((m) => m !== '' && m !== 'src/cli/main.ts' && m !== 'src/cli/node-version.ts') // the entry and its Node check
  }
  assert.deepEqual(await loaded(['--help']), [], '--help loads no command')
  const status = await loaded(['status', '--url', 'http://127.0.0.1:9'])
  assert.ok(status.includes('src/cli/status.ts'), status.join(', '))
  assert.deepEqual(status.filter((m) => m.startsWith('src/cli/') && m !== 'src/cli/status.ts' && m !== 'src/cli/args.ts' && m !== 'src/cli/main.ts'), [])
  assert.equal(status.includes('src/orchestrator.ts'), false, 'status does not load the orchestrator')
})
