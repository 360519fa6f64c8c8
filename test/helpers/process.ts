/** Runs the real entry point (`node src/main.ts`) as a child process, the way a user does. */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'

export const ROOT = new URL('../../', import.meta.url).pathname

export function writeConfig(config: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'agyc-cfg-'))
  const file = join(dir, 'config.json')
  writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config, null, 2))
  return file
}

export interface Running {
  child: ChildProcess
  url: Promise<string>
  output(): string
  exit: Promise<number | null>
}

/** Spawns main.ts; `url` resolves from its "listening" log line. Killed (SIGKILL) on teardown if still running. */
export function runMain(t: TestContext, args: string[], env: Record<string, string> = {}): Running {
  const child = spawn(process.execPath, ['src/main.ts', ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const { promise: url, resolve, reject } = Promise.withResolvers<string>()
  url.catch(() => {})
  child.stdout!.on('data', (d: Buffer) => {
    out += d
    const m = /"url":"(http:[^"]+)"/.exec(out)
    if (m) resolve(m[1])
  })
  child.stderr!.on('data', (d: Buffer) => { out += d })
  const exit = once(child, 'exit').then(([code]) => code as number | null)
  exit.then(() => reject(new Error(`exited before listening:\n${out}`)))
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  return { child, url, output: () => out, exit }
}

export interface Ran { code: number | null; stdout: string; stderr: string }

/** Runs the real `bin/agyc` with `args` to its end. */
export function runAgyc(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(`${ROOT}bin/agyc`, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d: Buffer) => { stdout += d })
    child.stderr!.on('data', (d: Buffer) => { stderr += d })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}
