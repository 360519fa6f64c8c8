/**
 * `agyc accounts login <id>`: runs an agent CLI's own interactive login inside the account's isolated state (the same
 * HOME, CLAUDE_CONFIG_DIR / GEMINI_CLI_HOME / CODEX_HOME and TMPDIR its session uses), with the terminal attached, so
 * ten accounts of one CLI keep ten separate logins.
 */
import { spawnSync } from 'node:child_process'
import { ConfigError, loadConfigFile } from '../config/load.ts'
import type { Config } from '../config/schema.ts'
import { isPreset, locateCommand, loggedIn, missingCommandMessage, presets, usesKey, writeSettings } from '../config/presets.ts'
import { ensureStateDir, privateDir } from '../config/state-dir.ts'
import { WORK_DIR, childEnvironment } from '../config/child-env.ts'
import { DEFAULT_CONFIG, parseCommand } from './args.ts'

export const accountsUsage = `usage: agyc accounts login ID [--config FILE]

Runs the account's agent CLI (claude-code, gemini-cli or codex) with its own interactive login, inside the
account's state directory, with the terminal attached. Each account keeps its own credentials.
  -c, --config FILE   the config file (default: ${DEFAULT_CONFIG})
  -h, --help          this text
`

/** What the user does in each CLI's login, said before it starts. */
const hints: Record<string, string> = {
  'claude-code': 'Claude Code opens its sign-in (a browser link); it exits when done.',
  'gemini-cli': 'Gemini CLI has no login command: choose "Sign in with Google" when it asks, then leave with /quit.',
  codex: 'Codex opens its sign-in (a browser link); it exits when done.',
}

export function runAccounts(argv: string[]): void {
  const { values, positionals } = parseCommand(argv, { config: { type: 'string', short: 'c', default: DEFAULT_CONFIG } }, accountsUsage, true)
  if (values.help) {
    process.stdout.write(accountsUsage)
    process.exit(0)
  }
  const [action, id] = positionals
  if (action !== 'login' || !id || positionals.length !== 2) {
    process.stderr.write(`expected "login ID"\n\n${accountsUsage}`)
    process.exit(2)
  }
  let config: Config
  try {
    config = loadConfigFile(values.config)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    for (const line of err.problems) process.stderr.write(`${line}\n`)
    process.exit(2)
  }
  const account = config.accounts.find((a) => a.id === id)
  if (!account) {
    process.stderr.write(`no account "${id}" in ${values.config}\n`)
    process.exit(2)
  }
  const session = account.session
  if (!isPreset(session)) {
    process.stderr.write(`account "${id}" is a "${session.kind}" session; only claude-code, gemini-cli and codex accounts log in\n`)
    process.exit(2)
  }
  const command = locateCommand(session.kind, session.command)
  if (!command) {
    process.stderr.write(`${missingCommandMessage(session.kind, session.command)}\n`)
    process.exit(1)
  }
  if (usesKey(session)) process.stdout.write(`note: account "${id}" answers with the API key from the config; a login is only used without one\n`)
  const { stateDir, tmpDir } = ensureStateDir(account.stateDir, account.confinedTo)
  writeSettings(session, stateDir)
  const preset = presets[session.kind]
  const env = childEnvironment(account.id, stateDir, tmpDir, { ...preset.quietEnv, ...preset.stateEnv(stateDir), ...session.env })
  const cwd = privateDir(stateDir, WORK_DIR)
  process.stdout.write(`${session.kind} login for account "${id}" (state in ${stateDir})\n${hints[session.kind]}\n`)
  const result = spawnSync(command, [...preset.loginArgs], { stdio: 'inherit', env, cwd })
  if (result.error) {
    process.stderr.write(`${command} could not start: ${result.error.message}\n`)
    process.exit(1)
  }
  const ok = loggedIn(session.kind, stateDir)
  process.stdout.write(ok ? `account "${id}" is logged in\n` : `no login found in ${stateDir} yet\n`)
  process.exit(result.status === 0 && ok ? 0 : 1)
}
