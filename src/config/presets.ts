/**
 * What the orchestrator knows about each agent CLI outside a request (docs/agent-clis.md): its executable and npm package,
 * where it keeps its login inside an account's state directory, the variables that keep it local and quiet, the
 * settings files it needs written, and its own interactive login. The account's session
 * (`workers/sessions/{claude-code,gemini-cli,codex}.ts`), `agyc accounts login` and `agyc validate` share it.
 */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import type { PresetKind, SessionConfig } from './schema.ts'
import { privateDir, writePrivateFile } from './state-dir.ts'

export type PresetConfig = Extract<SessionConfig, { kind: PresetKind }>

export interface Preset {
  readonly binary: string
  readonly npmPackage: string
  /** variables that put every file the CLI writes under the account's state directory (HOME is set too) */
  stateEnv(stateDir: string): Record<string, string>
  /** variables that keep it from calling home, updating itself or asking questions */
  readonly quietEnv: Readonly<Record<string, string>>
  /** files, relative to the state directory, any of which shows that someone logged in */
  readonly loginFiles: readonly string[]
  /** the CLI's own interactive login */
  readonly loginArgs: readonly string[]
}

export const presets: Record<PresetKind, Preset> = {
  'claude-code': {
    binary: 'claude',
    npmPackage: '@anthropic-ai/claude-code',
    stateEnv: (dir) => ({ CLAUDE_CONFIG_DIR: join(dir, '.claude') }),
    // without these it looked up api.anthropic.com 5 times per run (docs/agent-clis.md)
    quietEnv: { CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1', DISABLE_TELEMETRY: '1', DISABLE_AUTOUPDATER: '1', DISABLE_ERROR_REPORTING: '1' },
    loginFiles: ['.claude/.credentials.json'],
    loginArgs: ['auth', 'login'],
  },
  'gemini-cli': {
    binary: 'gemini',
    npmPackage: '@google/gemini-cli',
    stateEnv: (dir) => ({ GEMINI_CLI_HOME: dir }),
    // NO_RELAUNCH: one process (the default parent ignores SIGTERM); TRUST: no trust prompt in our working directory
    quietEnv: { GEMINI_CLI_NO_RELAUNCH: 'true', GEMINI_CLI_TRUST_WORKSPACE: 'true' },
    loginFiles: ['.gemini/oauth_creds.json', '.gemini/gemini-credentials.json'],
    // Gemini CLI has no login command: its interactive mode asks how to authenticate on first start
    loginArgs: [],
  },
  codex: {
    binary: 'codex',
    npmPackage: '@openai/codex',
    stateEnv: (dir) => ({ CODEX_HOME: join(dir, '.codex') }),
    // its log lines on stderr are colored otherwise
    quietEnv: { NO_COLOR: '1' },
    loginFiles: ['.codex/auth.json'],
    loginArgs: ['login'],
  },
}

export function isPreset(session: SessionConfig): session is PresetConfig {
  return Object.hasOwn(presets, session.kind)
}

/** The orchestrator's own node_modules/.bin, where `npm install` puts the CLIs it lists. */
const PROJECT_BIN = new URL('../../node_modules/.bin', import.meta.url).pathname

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/**
 * The CLI to run: `command` when configured (a path, or a name looked up on PATH), else the preset's binary on PATH,
 * else in this project's node_modules/.bin. Undefined when none is there.
 */
export function locateCommand(kind: PresetKind, configured: string | undefined, path = process.env.PATH ?? ''): string | undefined {
  const name = configured ?? presets[kind].binary
  if (name.includes('/')) return executable(name) ? name : undefined
  for (const dir of path.split(delimiter)) {
    if (dir && executable(join(dir, name))) return join(dir, name)
  }
  if (configured === undefined && executable(join(PROJECT_BIN, name))) return join(PROJECT_BIN, name)
  return undefined
}

export function missingCommandMessage(kind: PresetKind, configured: string | undefined): string {
  return configured !== undefined
    ? `${kind}: command "${configured}" was not found or is not executable`
    : `${kind}: the "${presets[kind].binary}" CLI is neither on PATH nor in node_modules/.bin; install ${presets[kind].npmPackage} or set session.command`
}

/** Whether the account can answer without a login of its own (an API key or token from the config). */
export function usesKey(session: PresetConfig): boolean {
  return session.apiKey !== undefined || (session.kind === 'claude-code' && session.authToken !== undefined)
}

export function loggedIn(kind: PresetKind, stateDir: string): boolean {
  return presets[kind].loginFiles.some((file) => existsSync(join(stateDir, file)))
}

/**
 * Writes the settings the CLI reads from its state directory (already created and checked by ensureStateDir), before
 * it starts (and before a login, so that the login sees them too). Gemini CLI's settings.json is merged (a login
 * records its choice of auth there); Codex's config.toml is ours and rewritten at every start. Neither is ever written
 * through a link planted in the state directory (state-dir.ts).
 */
export function writeSettings(session: PresetConfig, stateDir: string): void {
  if (session.kind === 'gemini-cli') {
    const dir = privateDir(stateDir, '.gemini')
    const file = join(dir, 'settings.json')
    let settings: Record<string, any> = {}
    try { settings = JSON.parse(readFileSync(file, 'utf8')) as Record<string, any> } catch { /* absent or unreadable: start over */ }
    const set = (path: string[], value: unknown): void => {
      let node = settings
      for (const key of path.slice(0, -1)) node = (node[key] = node[key] && typeof node[key] === 'object' ? node[key] : {})
      node[path.at(-1)!] = value
    }
    // with GOOGLE_GEMINI_BASE_URL alone it picks the "gateway" auth, which headless mode refuses (docs/agent-clis.md)
    if (session.apiKey) set(['security', 'auth', 'selectedType'], 'gemini-api-key')
    set(['privacy', 'usageStatisticsEnabled'], false)
    // by default it retries a 429 for minutes; the orchestrator fails over instead
    set(['general', 'maxAttempts'], 1)
    writePrivateFile(file, `${JSON.stringify(settings, null, 2)}\n`)
  } else if (session.kind === 'codex') {
    writePrivateFile(join(privateDir(stateDir, '.codex'), 'config.toml'), codexToml(session))
  }
}

/** TOML basic strings take JSON's escapes (\", \\, \n, \uXXXX). */
const q = (s: string): string => JSON.stringify(s)

export const CODEX_KEY_VAR = 'AGYC_CODEX_API_KEY'

function codexToml(session: Extract<PresetConfig, { kind: 'codex' }>): string {
  const lines = [
    '# Written by agyc at every start of this account; change the account in the orchestrator config instead.',
    'check_for_update_on_startup = false',
    // the agent may read and think, never write or ask: nobody is there to approve
    'approval_policy = "never"',
    'sandbox_mode = "read-only"',
  ]
  if (session.model) lines.push(`model = ${q(session.model)}`)
  if (session.baseUrl || session.apiKey) {
    // a custom provider: OPENAI_BASE_URL is not read, the built-in one tries WebSockets first (docs/agent-clis.md), and
    // only a custom provider takes retry caps. Without either, the CLI's own login and provider are used as they are.
    const baseUrl = session.baseUrl ?? 'https://api.openai.com/v1'
    lines.push('model_provider = "agyc"', '', '[model_providers.agyc]', 'name = "agyc"', `base_url = ${q(baseUrl)}`, 'wire_api = "responses"')
    lines.push(session.apiKey ? `env_key = ${q(CODEX_KEY_VAR)}` : 'requires_openai_auth = true')
    lines.push('request_max_retries = 0', 'stream_max_retries = 0')
  }
  lines.push('', '[analytics]', 'enabled = false', '', '[features]', 'plugins = false', 'remote_plugin = false', 'apps = false', '')
  return lines.join('\n')
}
