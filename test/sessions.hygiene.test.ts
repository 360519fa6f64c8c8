import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { eventually, fixturePids, freePort, isAlive } from './helpers/orchestrator.ts'

const ROOT = new URL('..', import.meta.url).pathname
const fixture = (name: string): string => new URL(`./fixtures/${name}`, import.meta.url).pathname

/**
 * A real orchestrator process (`node src/main.ts --config …`) with one account of each child-owning kind, a warm exec
 * child, and an exec request streaming when the test strikes.
 */
async function orchestratorProcess(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'agyc-hygiene-'))
  const port = await freePort()
  const config = {
    server: { port: 0 },
    log: { level: 'info' },
    accounts: [
      { id: 'stdio', session: { kind: 'stdio', command: 'node', args: [fixture('stdio-agent.mjs')] } },
      { id: 'exec', models: ['exec-model'], session: { kind: 'exec', command: 'node', args: [fixture('exec-agent.mjs'), '--output', 'events'], output: 'events', prewarm: 1 } },
      {
        id: 'http', session: {
          kind: 'http', baseUrl: `http://127.0.0.1:${port}`,
          start: { command: 'node', args: [fixture('http-upstream.mjs'), '--port', String(port)], readyUrl: `http://127.0.0.1:${port}/health` },
        },
      },
    ],
  }
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config))
  const proc = spawn(process.execPath, ['src/main.ts', '--config', join(dir, 'config.json')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  t.after(() => {
    proc.kill('SIGKILL')
    for (const pid of fixturePids(dir)) try { process.kill(-pid, 'SIGKILL') } catch { /* gone, as it should be */ }
    rmSync(dir, { recursive: true, force: true })
  })
  let stderr = ''
  proc.stderr!.setEncoding('utf8').on('data', (text: string) => { stderr += text })
  const url = await new Promise<string>((resolve, reject) => {
    let buffered = ''
    proc.stdout!.setEncoding('utf8').on('data', (text: string) => {
      buffered += text
      const match = /"url":"([^"]+)"[^\n]*"msg":"listening"/.exec(buffered)
      if (match) resolve(match[1])
    })
    proc.once('exit', (code) => reject(new Error(`orchestrator exited (${code}): ${stderr}`)))
  })
  // a streamed exec request in flight: its child is busy printing when the orchestrator goes
  const res = await fetch(`${url}/v1/messages`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'exec-model', max_tokens: 10, stream: true, messages: [{ role: 'user', content: '[[slow 200]] '.repeat(4) }] }),
  })
  const reader = res.body!.getReader()
  await reader.read()
  reader.read().catch(() => {})
  return { proc, dir }
}

test('SIGKILL of the orchestrator: every child notices (stdin EOF or a broken pipe) and exits', async (t) => {
  const { proc, dir } = await orchestratorProcess(t)
  await eventually(() => fixturePids(dir).filter(isAlive).length >= 4, 'stdio child, busy and warm exec children, local server', 10_000)
  const pids = fixturePids(dir).filter(isAlive)
  proc.kill('SIGKILL')
  await eventually(() => pids.every((pid) => !isAlive(pid)), `no child survives a SIGKILLed orchestrator (alive: ${pids.filter(isAlive).join(', ')})`, 5_000)
})

test('SIGTERM of the orchestrator stops every child and exits 0', async (t) => {
  const { proc, dir } = await orchestratorProcess(t)
  await eventually(() => fixturePids(dir).filter(isAlive).length >= 4, 'children are up', 10_000)
  const pids = fixturePids(dir).filter(isAlive)
  const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve))
  proc.kill('SIGTERM')
  assert.equal(await exited, 0)
  for (const pid of pids) assert.equal(isAlive(pid), false, `child ${pid} outlived the orchestrator`)
})

