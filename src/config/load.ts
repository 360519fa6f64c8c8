/**
 * Reads and validates the config file: one line per problem, naming the path (`accounts[3].maxConcurrency: …`).
 * State directories are resolved here, against the config file's folder, so that duplicates are caught before start.
 */
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { z } from 'zod'
import { Config, type SessionConfig } from './schema.ts'

export class ConfigError extends Error {
  readonly problems: readonly string[]
  constructor(problems: readonly string[]) {
    super(problems.join('\n'))
    this.name = 'ConfigError'
    this.problems = problems
  }
}

export interface Overrides {
  host?: string | undefined
  port?: number | undefined
}

/** `['accounts', 3, 'maxConcurrency']` → `accounts[3].maxConcurrency` */
export const where = (path: readonly PropertyKey[]): string =>
  path.reduce<string>((s, p) => (typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${String(p)}` : String(p)), '')

export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => `${where(issue.path) || '(root)'}: ${issue.message}`)
}

export function loadConfigFile(file: string, overrides: Overrides = {}): Config {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError([`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`])
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new ConfigError([`${file}: not valid JSON (${(err as Error).message})`])
  }
  return parseConfig(raw, dirname(resolve(file)), overrides)
}

/** `./x` and `../x` in a child's command and args name files next to the config, whatever the child's cwd. */
const relative = (arg: string, baseDir: string): string => (arg.startsWith('./') || arg.startsWith('../') ? resolve(baseDir, arg) : arg)

function resolveCommandPaths(session: SessionConfig, baseDir: string): SessionConfig {
  switch (session.kind) {
    case 'exec':
    case 'stdio':
      return { ...session, command: relative(session.command, baseDir), args: session.args.map((a) => relative(a, baseDir)) }
    case 'http':
      if (!session.start) return session
      return { ...session, start: { ...session.start, command: relative(session.start.command, baseDir), args: session.start.args.map((a) => relative(a, baseDir)) } }
    default:
      return session
  }
}

/** Validates a config object; relative paths resolve against `baseDir`. */
export function parseConfig(raw: unknown, baseDir: string, overrides: Overrides = {}): Config {
  const parsed = Config.safeParse(raw)
  if (!parsed.success) throw new ConfigError(formatIssues(parsed.error.issues))
  const config = parsed.data
  const stateRoot = resolve(baseDir, config.stateRoot)
  const accounts = config.accounts.map((a) => ({
    ...a, stateDir: resolve(baseDir, a.stateDir ?? resolve(stateRoot, a.id)), session: resolveCommandPaths(a.session, baseDir),
  }))
  const problems: string[] = []
  const dirs = new Map<string, number>()
  accounts.forEach((a, i) => {
    const first = dirs.get(a.stateDir)
    if (first !== undefined) problems.push(`accounts[${i}].stateDir: "${a.stateDir}" is already the state directory of accounts[${first}]`)
    else dirs.set(a.stateDir, i)
  })
  accounts.forEach((a, i) => missingEnv(a.session, ['accounts', i, 'session'], problems))
  if (problems.length > 0) throw new ConfigError(problems)
  const server = { ...config.server }
  if (overrides.host !== undefined) server.host = overrides.host
  if (overrides.port !== undefined) server.port = overrides.port
  return { ...config, server, stateRoot, accounts }
}

/**
 * Secrets named as `{"fromEnv": "VAR"}` must exist when the config is loaded: a missing one would otherwise fail the
 * session's start inside its worker and restart it forever. The value itself is never read here, never printed.
 */
function missingEnv(value: unknown, path: (string | number)[], problems: string[]): void {
  if (value === null || typeof value !== 'object') return
  const fromEnv = (value as { fromEnv?: unknown }).fromEnv
  if (typeof fromEnv === 'string') {
    if (process.env[fromEnv] === undefined) problems.push(`${where(path)}: environment variable ${fromEnv} is not set`)
    return
  }
  for (const [key, child] of Object.entries(value)) missingEnv(child, [...path, Array.isArray(value) ? Number(key) : key], problems)
}
