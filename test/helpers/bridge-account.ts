/**
 * An agent-CLI account as the bridge tests need it, without an orchestrator: the account config through the real
 * schema (defaults included), its settings written by the preset's own `writeSettings`, and the launcher that spawns
 * the real CLI with the account's isolated environment. Every child pid is recorded for the no-orphan check.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { Account, type AccountConfig } from '../../src/config/schema.ts'
import { writeSettings, type PresetConfig } from '../../src/config/presets.ts'
import { createLauncher, type Launcher } from '../../workers/sessions/process/child.ts'
import { presetSpec } from '../../workers/sessions/agent/preset.ts'
import type { SessionContext } from '../../workers/sessions/types.ts'
import type { ToolBridge } from '../../workers/sessions/bridge/types.ts'

export interface BridgeAccount {
  readonly stateDir: string
  readonly config: PresetConfig
  readonly launcher: Launcher
  /** every child pid the launcher spawned */
  readonly pids: Set<number>
  readonly stderr: string[]
}

export function bridgeAccount(t: TestContext, session: Record<string, unknown>, own: Record<string, string | { fromEnv: string }>): BridgeAccount {
  const root = mkdtempSync(join(tmpdir(), 'agyc-bridge-'))
  t.after(() => rmSync(root, { recursive: true, force: true }))
  const stateDir = join(root, 'account')
  const parsed = Account.parse({ id: 'bridge-test', session })
  const account = { ...parsed, stateDir } as AccountConfig
  const pids = new Set<number>()
  const stderr: string[] = []
  const context: SessionContext = {
    account,
    emit(event) {
      if (event.kind === 'child' && event.alive && typeof event.pid === 'number') pids.add(event.pid)
      if (event.kind === 'log') stderr.push(JSON.stringify(event.fields))
    },
  }
  const config = account.session as PresetConfig
  const spec = presetSpec(context, config, [], own)
  if (typeof spec === 'string') throw new Error(spec)
  const launcher = createLauncher(context, spec)
  writeSettings(config, stateDir)
  return { stateDir, config, launcher, pids, stderr }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

/**
 * One bridge step in which the model only calls a tool: no text, yet the bridge must say the CLI is alive (what
 * restarts the session's silence timer). The same check for each CLI's bridge.
 */
export async function assertAliveWithoutText(bridge: ToolBridge): Promise<void> {
  let text = ''
  let beats = 0
  const step = await bridge.start({ text: 'Weather in Oslo?' }, (d) => { text += d }, () => { beats++ })
  assert.equal(step.kind, 'tool_use')
  assert.equal(text, '', 'no text in this step')
  assert.ok(beats > 0, 'signs of life while the model called the tool')
  await bridge.close()
}
