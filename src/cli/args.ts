/** Argument parsing shared by the `agyc` commands: node's parseArgs, with a usage line instead of a stack trace. */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util'

/** the file `agyc start` and `agyc accounts login` read without `--config` */
export const DEFAULT_CONFIG = 'config.example.json'

export function parseCommand<O extends ParseArgsOptionsConfig>(argv: string[], options: O, usage: string, positionals = false) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: positionals, strict: true })
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage}`)
    process.exit(2)
  }
}
