/**
 * Issue 6, point 1: binding. The default is 127.0.0.1; a non-loopback address is refused at start-up, with one
 * config-style line and a non-zero exit, unless client keys are configured.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { ConfigError, isLoopback, parseConfig } from '../../src/config/load.ts'
import { mockAccounts, startSecured } from './helper.ts'

const main = new URL('../../src/main.ts', import.meta.url).pathname

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [main, ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += d })
    child.stderr.on('data', (d) => { stderr += d })
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stderr, stdout }) })
  })
}

test('by default the proxy listens on 127.0.0.1 only', async (t) => {
  const { orch } = await startSecured(t, { accounts: mockAccounts(1) })
  assert.equal((orch.server.address() as { address: string }).address, '127.0.0.1')
})

test('start-up refuses a non-loopback bind without client keys: one config line, exit 2, nothing listening', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'agyc-bind-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'config.json')
  writeFileSync(file, JSON.stringify({ server: { host: '0.0.0.0', port: 0 }, accounts: mockAccounts(1) }))
  const res = await run(['--config', file])
  assert.equal(res.code, 2)
  assert.match(res.stderr, /^server\.host: "0\.0\.0\.0" is not a loopback address/m)
  assert.doesNotMatch(res.stdout, /listening/)
  // the same through --host, with a loopback config
  writeFileSync(file, JSON.stringify({ server: { port: 0 }, accounts: mockAccounts(1) }))
  const byFlag = await run(['--config', file, '--host', '::'])
  assert.equal(byFlag.code, 2)
  assert.match(byFlag.stderr, /^server\.host: "::" is not a loopback address/m)
})

test('a non-loopback bind is accepted once client keys are configured (from the environment)', () => {
  process.env.AGYC_TEST_BIND_KEY = 'k'.repeat(32)
  const config = parseConfig({ server: { host: '0.0.0.0', auth: { keys: [{ fromEnv: 'AGYC_TEST_BIND_KEY' }] } }, accounts: mockAccounts(1) }, tmpdir())
  assert.equal(config.server.host, '0.0.0.0')
  assert.deepEqual(config.server.auth.keys, ['k'.repeat(32)])
  // admin keys alone do not count: the API itself would be open to the network
  assert.throws(() => parseConfig({ server: { host: '0.0.0.0', auth: { adminKeys: ['a'.repeat(32)] } }, accounts: mockAccounts(1) }, tmpdir()), ConfigError)
})

test('loopback means 127.0.0.0/8, ::1 and localhost; a name or another address is not', () => {
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) assert.equal(isLoopback(host), true, host)
  for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.2', 'example.com', 'localhost.example.com', '128.0.0.1', '::2']) assert.equal(isLoopback(host), false, host)
})
