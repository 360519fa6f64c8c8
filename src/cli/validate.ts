/** `agyc validate FILE`: the start-up checks without starting anything; the same lines, the same exit code. */
import { ConfigError, loadConfigFile } from '../config/load.ts'
import { parseCommand } from './args.ts'

export const validateUsage = `usage: agyc validate FILE

Checks a config file as start-up does and prints one line per problem (path: message).
Exit 0 when it is valid, 2 when it has problems.
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
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    for (const line of err.problems) process.stderr.write(`${line}\n`)
    process.exit(2)
  }
}
