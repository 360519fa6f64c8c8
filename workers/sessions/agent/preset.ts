/**
 * What the three agent-CLI presets share when they start: the CLI located (or a clear reason why the account cannot
 * serve), and the environment that isolates it: the allowlist every child gets (child.ts), then the preset's state
 * and quiet variables, then the preset's own endpoint and key, then the account's `env`.
 */
import { WORK_DIR } from '../../../src/config/child-env.ts'
import { OrchestratorError } from '../../../src/errors.ts'
import { locateCommand, missingCommandMessage, presets, type PresetConfig } from '../../../src/config/presets.ts'
import type { ChildSpec } from '../process/child.ts'
import type { Session, SessionContext } from '../types.ts'

/** The folder of the state directory the CLI runs in: its files to work on, apart from its credentials. */

type EnvValue = ChildSpec['env'][string]

export function presetSpec(context: SessionContext, config: PresetConfig, args: readonly string[], own: Record<string, EnvValue | undefined>): ChildSpec | string {
  const command = locateCommand(config.kind, config.command)
  if (!command) return missingCommandMessage(config.kind, config.command)
  const preset = presets[config.kind]
  const env: Record<string, EnvValue> = { ...preset.quietEnv, ...preset.stateEnv(context.account.stateDir) }
  for (const [name, value] of Object.entries(own)) if (value !== undefined) env[name] = value
  return { command, args: [...args, ...config.extraArgs], env: { ...env, ...config.env }, killGraceMs: config.killGraceMs, workDir: WORK_DIR }
}

/**
 * An account whose CLI cannot run (not installed): it reports itself failed at start, with the reason, so routing
 * skips it and /admin/accounts says why; a request that reaches it anyway fails at once.
 */
export function unavailableSession(context: SessionContext, reason: string): Session {
  return {
    async start() {
      context.emit({ kind: 'log', level: 'error', msg: reason, fields: {} })
      // before the worker's `ready`, which leaves a session's reported state as it is (account-handle.ts)
      context.emit({ kind: 'session', up: false, state: 'failed', reason })
    },
    run: () => Promise.reject(new OrchestratorError('AGYC_UPSTREAM_FAILED', reason)),
    async stop() {},
    child: { pid: undefined, alive: false, restarts: 0, lastError: reason },
  }
}
