/** `agyc validate FILE`: the start-up checks without starting anything; the same lines, the same exit code. */
import { resolve } from 'node:path'
import { ConfigError, loadConfigFile } from '../config/load.ts'
import type { Config } from '../config/schema.ts'
import { isPreset, locateCommand, loggedIn, missingCommandMessage, usesKey } from '../config/presets.ts'
import { DEFAULT_CONFIG, parseCommand } from './args.ts'

export const validateUsage = `usage: agyc validate FILE

Checks a config file as start-up does and prints one line per problem (path: message).
Exit 0 when it is valid, 2 when it has problems. Agent-CLI accounts whose CLI is missing or not logged in
get a warning line each (exit 0 all the same).
`

export function runValidate(argv: string[]): void {
  const { values, positionals } = parseCommand(argv, {}, validateUsage, true)
  if (values.help) {
    process.stdout.write(validateUsage)
    process.exit(0)
  }
  if (positionals.length !== 1) {
    process.stderr.write(`expected one config file\n\n${validateUsage}`)
    process.exit(2)
  }
  const [file] = positionals
  try {
    const config = loadConfigFile(file)
    process.stdout.write(`${file}: ok (${config.accounts.length} account${config.accounts.length === 1 ? '' : 's'}, strategy ${config.dispatcher.strategy})\n`)
    // not errors: a CLI installed later or a login done later makes the account work without a config change
    for (const line of presetWarnings(config, file)) process.stderr.write(`warning: ${line}\n`)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    for (const line of err.problems) process.stderr.write(`${line}\n`)
    process.exit(2)
  }
}

/**
 * Agent-CLI accounts that would not serve as things stand: the CLI is not installed, or nobody logged in. The login
 * hint names `file` unless it is the file `agyc accounts login` reads by default.
 */
export function presetWarnings(config: Config, file = DEFAULT_CONFIG): string[] {
  const configArg = resolve(file) === resolve(DEFAULT_CONFIG) ? '' : ` --config ${shellQuote(file)}`
  const lines: string[] = []
  config.accounts.forEach((account, i) => {
    const session = account.session
    if (!isPreset(session)) return
    const where = `accounts[${i}] (${account.id})`
    if (!locateCommand(session.kind, session.command)) lines.push(`${where}: ${missingCommandMessage(session.kind, session.command)}`)
    if (!usesKey(session) && !loggedIn(session.kind, account.stateDir)) {
      lines.push(`${where}: ${session.kind} is not logged in (no credentials in ${account.stateDir}); run "agyc accounts login ${account.id}${configArg}"`)
    }
  })
  return lines
}

/** `file` as one shell word: as is when it is plain, else in single quotes */
const shellQuote = (file: string): string => (/^[\w@%+=:,./-]+$/.test(file) ? file : `'${file.replaceAll("'", "'\\''")}'`)
