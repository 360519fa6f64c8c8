/**
 * What an account's children run with, shared by its worker (which spawns them) and `agyc accounts login` (which runs
 * a CLI's own login the same way): an allowlisted environment with HOME and TMPDIR inside the account's state
 * directory, and the working directory agent CLIs run in.
 */
import { dirname } from 'node:path'
import { OrchestratorError } from '../errors.ts'

export type EnvValue = string | { fromEnv: string }

/** an agent CLI's working directory, inside its account's state directory */
export const WORK_DIR = 'work'

/** What a child inherits from the orchestrator's environment; everything else it gets by name from the config. */
const INHERITED = ['PATH', 'LANG', 'LANGUAGE', 'LC_ALL', 'LC_CTYPE', 'LC_MESSAGES', 'TZ']

/** The allowlisted environment of an account's children (also what `agyc accounts login` runs a CLI with). */
export function childEnvironment(accountId: string, stateDir: string, tmpDir: string, extra: Readonly<Record<string, EnvValue>>): Record<string, string> {
  const env: Record<string, string> = {}
  for (const name of INHERITED) if (process.env[name] !== undefined) env[name] = process.env[name]
  // "node" and `#!/usr/bin/env node` scripts get the Node that runs us (the one npm installed), not whatever is on PATH
  env.PATH = env.PATH ? `${dirname(process.execPath)}:${env.PATH}` : dirname(process.execPath)
  env.HOME = stateDir
  env.TMPDIR = tmpDir
  env.AGYC_STATE_DIR = stateDir
  env.AGYC_ACCOUNT_ID = accountId
  for (const [name, value] of Object.entries(extra)) env[name] = resolveEnvValue(value, name, stateDir)
  return env
}

/** `{"fromEnv": "VAR"}` is read here, in the worker, at account start; the value is never logged. */
export function resolveEnvValue(value: EnvValue, name: string, stateDir: string): string {
  if (typeof value === 'string') return value.replaceAll('{stateDir}', stateDir)
  const found = process.env[value.fromEnv]
  if (found === undefined) throw new OrchestratorError('AGYC_INTERNAL', `${name}: environment variable ${value.fromEnv} is not set`)
  return found
}

