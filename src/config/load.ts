/**
 * Reads and validates the config file: one line per problem, naming the path (`accounts[3].maxConcurrency: …`).
 * State directories are resolved here, against the config file's folder, so that duplicates are caught before start.
 */
import { lstatSync, readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path'
import type { z } from 'zod'
import { Account, Config, type SessionConfig } from './schema.ts'
import { rememberSecret } from './known-secrets.ts'

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
const againstConfig = (arg: string, baseDir: string): string => (arg.startsWith('./') || arg.startsWith('../') ? resolve(baseDir, arg) : arg)

function resolveCommandPaths(session: SessionConfig, baseDir: string): SessionConfig {
  switch (session.kind) {
    case 'exec':
    case 'stdio':
      return { ...session, command: againstConfig(session.command, baseDir), args: session.args.map((a) => againstConfig(a, baseDir)) }
    case 'http':
      if (!session.start) return session
      return { ...session, start: { ...session.start, command: againstConfig(session.start.command, baseDir), args: session.start.args.map((a) => againstConfig(a, baseDir)) } }
    case 'claude-code':
    case 'gemini-cli':
    case 'codex':
      return session.command === undefined ? session : { ...session, command: againstConfig(session.command, baseDir) }
    default:
      return session
  }
}

/** Validates a config object; relative paths resolve against `baseDir`. */
export function parseConfig(raw: unknown, baseDir: string, overrides: Overrides = {}): Config {
  const parsed = Config.safeParse(raw)
  // the schema's own cross-account check runs only on a config that otherwise passes: say it now, with the rest
  if (!parsed.success) throw new ConfigError([...new Set([...formatIssues(parsed.error.issues), ...sharedIdentities(raw, baseDir)])])
  const config = parsed.data
  const stateRoot = resolve(baseDir, config.stateRoot)
  const accounts = config.accounts.map((a) => ({
    ...a, stateDir: resolve(baseDir, a.stateDir ?? resolve(stateRoot, a.id)), session: resolveCommandPaths(a.session, baseDir),
    ...(config.confineStateDirs ? { confinedTo: stateRoot } : {}),
  }))
  const problems: string[] = []
  const dirs = new Map<string, number>()
  accounts.forEach((a, i) => {
    const first = dirs.get(a.stateDir)
    if (first !== undefined) problems.push(`accounts[${i}].stateDir: "${a.stateDir}" is already the state directory of accounts[${first}]`)
    else dirs.set(a.stateDir, i)
  })
  problems.push(...nestedStateDirs(accounts))
  if (config.confineStateDirs) {
    accounts.forEach((a, i) => {
      const problem = escapesRoot(stateRoot, a.stateDir, config.accounts[i].stateDir)
      if (problem) problems.push(`accounts[${i}].stateDir: ${problem}`)
    })
  }
  accounts.forEach((a, i) => missingEnv(a.session, ['accounts', i, 'session'], problems))
  const server = { ...config.server }
  if (overrides.host !== undefined) server.host = overrides.host
  if (overrides.port !== undefined) server.port = overrides.port
  if (!isLoopback(server.host) && server.auth.keys.length === 0) {
    problems.push(`server.host: "${server.host}" is not a loopback address; set server.auth.keys before exposing the proxy (docs/security.md)`)
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return { ...config, server, stateRoot, accounts }
}

/**
 * Secrets named as `{"fromEnv": "VAR"}` must exist when the config is loaded: a missing one would otherwise fail the
 * session's start inside its worker and restart it forever. The value is never printed; it is remembered as a secret,
 * so that this process scrubs it from everything it writes: the account's worker reads it and hands it to an upstream
 * or a child, and what comes back (an upstream quoting the key in its error, a CLI's stderr, /admin/accounts'
 * lastError) passes through here on its way to a client or the log.
 */
function missingEnv(value: unknown, path: (string | number)[], problems: string[]): void {
  if (value === null || typeof value !== 'object') return
  const fromEnv = (value as { fromEnv?: unknown }).fromEnv
  if (typeof fromEnv === 'string') {
    const found = process.env[fromEnv]
    if (found === undefined) problems.push(`${where(path)}: environment variable ${fromEnv} is not set`)
    else rememberSecret(found)
    return
  }
  for (const [key, child] of Object.entries(value)) missingEnv(child, [...path, Array.isArray(value) ? Number(key) : key], problems)
}

/** 127.0.0.0/8, ::1, `localhost`. A name that merely resolves to loopback is not trusted: it may resolve elsewhere tomorrow. */
export function isLoopback(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  if (h.toLowerCase() === 'localhost') return true
  const v4 = h.toLowerCase().startsWith('::ffff:') ? h.slice(7) : h
  if (isIP(v4) === 4) return v4.startsWith('127.')
  return isIP(h) === 6 && /^(0{0,4}:){2,7}0{0,3}1$|^::1$/.test(h)
}

/**
 * Duplicate ids and shared state directories, read from a config that did not pass the schema: only the
 * accounts whose id (and stateDir, if given) are themselves valid take part, so nothing is reported twice or guessed.
 */
function sharedIdentities(raw: unknown, baseDir: string): string[] {
  const rawAccounts = (raw as { accounts?: unknown } | null)?.accounts
  if (!Array.isArray(rawAccounts)) return []
  const rawRoot = (raw as { stateRoot?: unknown }).stateRoot
  const stateRoot = resolve(baseDir, typeof rawRoot === 'string' && rawRoot !== '' ? rawRoot : '.state')
  const problems: string[] = []
  const ids = new Set<string>()
  const dirs = new Map<string, number>()
  rawAccounts.forEach((account: unknown, i) => {
    const id = (account as { id?: unknown } | null)?.id
    if (!Account.shape.id.safeParse(id).success) return
    // its state directory is then most likely shared too: one line says it
    if (ids.has(id as string)) {
      problems.push(`accounts[${i}].id: duplicate account id "${id as string}"`)
      return
    }
    ids.add(id as string)
    const written = (account as { stateDir?: unknown }).stateDir
    if (written !== undefined && (typeof written !== 'string' || written === '')) return
    const stateDir = resolve(baseDir, written ?? resolve(stateRoot, id as string))
    const first = dirs.get(stateDir)
    if (first !== undefined) problems.push(`accounts[${i}].stateDir: "${stateDir}" is already the state directory of accounts[${first}]`)
    else dirs.set(stateDir, i)
  })
  return problems
}

/** One account's directory inside another's would let the two sessions read each other's state. */
function nestedStateDirs(accounts: readonly { stateDir: string }[]): string[] {
  const sorted = accounts.map((a, i) => ({ dir: a.stateDir, i })).sort((a, b) => a.dir.localeCompare(b.dir))
  const problems: string[] = []
  for (let k = 1; k < sorted.length; k++) {
    const outer = sorted[k - 1]
    const inner = sorted[k]
    if (inner.dir.startsWith(outer.dir + sep)) {
      problems.push(`accounts[${inner.i}].stateDir: "${inner.dir}" lies inside the state directory of accounts[${outer.i}]`)
    }
  }
  return problems
}

/**
 * Why `dir` is not a safe place under `root`, or undefined. Refuses a `..` segment even when it resolves inside (a
 * reader should not have to resolve it to know), a path outside, and any existing symbolic link between root and dir:
 * a link planted there would carry the account's files elsewhere. The worker that creates the directory must still
 * refuse to follow links when it does (issue 3); this check catches what is already on disk at load.
 */
function escapesRoot(root: string, dir: string, written: string | undefined): string | undefined {
  if (written !== undefined && written.split(/[\\/]/).includes('..')) return `"${written}" contains "..", which confineStateDirs refuses`
  const rel = relative(root, dir)
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return `"${dir}" is not under stateRoot "${root}"`
  let path = root
  for (const part of rel.split(sep)) {
    path = resolve(path, part)
    let isLink: boolean
    try {
      isLink = lstatSync(path).isSymbolicLink()
    } catch {
      return undefined // the rest does not exist yet: nothing planted
    }
    if (isLink) return `"${path}" is a symbolic link; state directories are never reached through links`
  }
  return undefined
}
