/**
 * The processes of the agent-CLI bench (bench/agents.ts): an orchestrator as a child process (`node src/main.ts
 * --config`), ready when `/admin/accounts` says every account's CLI is up; and one agent CLI run directly in its own
 * headless mode (`claude -p`, `codex exec`, `gemini -p`) against the same fake model. Everything is stopped by its own
 * pid; whatever of a process tree outlives its root is killed by pid too.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Session } from '../src/config/schema.ts'
import { CODEX_KEY_VAR, locateCommand, presets, writeSettings, type PresetConfig } from '../src/config/presets.ts'
import type { PresetKind } from '../src/config/schema.ts'
import { processTree, readText, rssMb, startProc, waitFor, type Proc } from './procs.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
/** every core: the orchestrator's CLIs are its children and would inherit a one-core pin */
const ALL_CORES = Array.from({ length: availableParallelism() }, (_, i) => i).join(',')
export const BENCH_KEY_VAR = 'AGYC_BENCH_AGENT_KEY'
export const BENCH_KEY = 'key-bench'

export interface RunningOrchestrator {
  readonly url: string
  readonly proc: Proc
  /** every process of the tree: the orchestrator and all its CLIs */
  pids(): number[]
  rssMb(): number
  stop(): Promise<void>
}

interface AccountRow { id: string; state: string; parked: boolean; health: { session?: unknown; childAlive?: unknown } }

export async function startOrchestrator(dir: string, name: string, config: Record<string, unknown>): Promise<RunningOrchestrator> {
  const full = { server: { host: '127.0.0.1', port: 0 }, log: { level: 'info' }, stateRoot: join(dir, `state-${name}`), ...config }
  const configFile = join(dir, `${name}.config.json`)
  writeFileSync(configFile, JSON.stringify(full, null, 2))
  const logFile = join(dir, `${name}.log`)
  const proc = startProc(ALL_CORES, process.execPath, [join(ROOT, 'src/main.ts'), '--config', configFile], {
    logFile, cwd: ROOT, env: { ...process.env, [BENCH_KEY_VAR]: BENCH_KEY },
  })
  const url = await waitFor(() => {
    const match = /"url":"(http:[^"]+)"[^\n]*"msg":"listening"/.exec(readText(logFile))
    if (match) return match[1]
    if (proc.child.exitCode !== null) throw new Error(`orchestrator ${name} exited: ${readText(logFile).slice(-600)}`)
    return undefined
  }, `orchestrator ${name} to listen`, 60_000)
  return {
    url, proc,
    pids: () => processTree(proc.pid),
    rssMb: () => rssMb(processTree(proc.pid)),
    async stop() {
      const tree = processTree(proc.pid)
      await proc.stop()
      // the orchestrator ends its CLIs on SIGTERM; one that did not is ours to end, by its pid
      for (const pid of tree) if (isAlive(pid)) try { process.kill(pid, 'SIGKILL') } catch { /* gone meanwhile */ }
    },
  }
}

/**
 * Every account's CLI up: state `up`, a worker, its session up and its long-lived child alive. Claude Code's session
 * runs a process per request and reports no child (`childAlive: null`): its prewarmed processes are counted in the
 * tree instead (`claude -p --input-format stream-json`), one per Claude Code account.
 */
export async function untilReady(orch: RunningOrchestrator, ms: number): Promise<void> {
  await waitFor(async () => {
    if (orch.proc.child.exitCode !== null) throw new Error('the orchestrator exited before its accounts were ready')
    const { accounts } = await (await fetch(`${orch.url}/admin/accounts`)).json() as { accounts: AccountRow[] }
    const claude = accounts.filter((a) => a.id.startsWith('claude-code')).length
    const up = accounts.every((a) => a.state === 'up' && !a.parked && a.health.session === 'up' && a.health.childAlive !== false)
    return (up && prewarmedClaude(orch.pids()) >= claude) || undefined
  }, 'every account up', ms)
}

function prewarmedClaude(pids: readonly number[]): number {
  return pids.filter((pid) => {
    const argv = readText(`/proc/${pid}/cmdline`).split('\0')
    return /claude/.test(argv[0] ?? '') && argv.includes('--input-format')
  }).length
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  return !/^\d+ \(.*\) Z/.test(readText(`/proc/${pid}/stat`))
}

export interface DirectRun { firstByteMs: number; totalMs: number; ok: boolean }

/**
 * One run of the CLI in its own headless mode, from spawn to its first stdout byte (the answer: `claude -p` and
 * `codex exec` print the final message there, `gemini -p` streams it), with a fresh state directory set up as an
 * account's would be (the preset's variables and settings files). `ok`: the model's text reached stdout.
 */
export async function runDirect(kind: PresetKind, session: Record<string, unknown>, answer: string, timeoutMs = 60_000): Promise<DirectRun> {
  const config = Session.parse(session) as PresetConfig
  const command = locateCommand(kind, undefined)
  if (!command) throw new Error(`${kind}: CLI not installed`)
  const stateDir = mkdtempSync(join(tmpdir(), `agyc-bench-${kind}-`))
  const workDir = join(stateDir, 'work')
  mkdirSync(workDir)
  writeSettings(config, stateDir)
  const base = String(config.baseUrl)
  const own: Record<PresetKind, Record<string, string>> = {
    'claude-code': { ANTHROPIC_BASE_URL: base, ANTHROPIC_API_KEY: BENCH_KEY, CLAUDE_CODE_MAX_RETRIES: '0' },
    'gemini-cli': { GOOGLE_GEMINI_BASE_URL: base, GEMINI_API_KEY: BENCH_KEY },
    codex: { [CODEX_KEY_VAR]: BENCH_KEY },
  }
  const prompt = 'Say hello'
  const args: Record<PresetKind, string[]> = {
    'claude-code': ['-p', prompt, '--model', String(config.model)],
    'gemini-cli': ['-p', prompt, '-m', String(config.model)],
    codex: ['exec', '--skip-git-repo-check', prompt],
  }
  const env = { PATH: process.env.PATH ?? '', HOME: stateDir, ...presets[kind].quietEnv, ...presets[kind].stateEnv(stateDir), ...own[kind] }
  const started = performance.now()
  const child = spawn(command, args[kind], { cwd: workDir, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let firstByteMs = -1
  let out = ''
  child.stdout.on('data', (d: Buffer) => {
    if (firstByteMs < 0) firstByteMs = performance.now() - started
    out += d
  })
  child.stderr.resume()
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const tree = (): number[] => (child.pid === undefined ? [] : processTree(child.pid))
  let seen: number[] = []
  const sampler = setInterval(() => { seen = [...new Set([...seen, ...tree()])] }, 100)
  await new Promise<void>((resolve) => child.once('close', () => resolve()))
  clearTimeout(timer)
  clearInterval(sampler)
  // a CLI's helper that outlived it (none expected) is ours: by pid
  for (const pid of seen) if (pid !== child.pid && isAlive(pid)) try { process.kill(pid, 'SIGKILL') } catch { /* gone */ }
  return { firstByteMs, totalMs: performance.now() - started, ok: child.exitCode === 0 && out.includes(answer) }
}
