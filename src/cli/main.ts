/** `agyc`: one command per operation (bin/agyc runs this file on the Node npm installed). */
import { requireSupportedNode } from './node-version.ts'

const usage = `usage: agyc <command> [options]

Commands:
  start [--config FILE]   run the orchestrator (SIGHUP reloads FILE)
  validate FILE           check a config file; one line per problem
  status [--url URL]      the accounts of a running orchestrator, as a table
  bench [ARGS…]           run the benchmark (bench/run.ts)
  accounts login ID       log an agent-CLI account in, inside its own state directory

agyc <command> --help shows a command's options.
`

requireSupportedNode()

// Each command is imported when it runs: loading all of them (the orchestrator, zod schemas, presets…) cost ~1 s of
// CPU before `agyc status` or `agyc --help` could do anything.
const commands = {
  start: async () => { const m = await import('./start.ts'); return { usage: m.startUsage, run: m.runStart } },
  validate: async () => { const m = await import('./validate.ts'); return { usage: m.validateUsage, run: m.runValidate } },
  status: async () => { const m = await import('./status.ts'); return { usage: m.statusUsage, run: m.runStatus } },
  bench: async () => { const m = await import('./bench.ts'); return { usage: m.benchUsage, run: m.runBench } },
  accounts: async () => { const m = await import('./accounts.ts'); return { usage: m.accountsUsage, run: m.runAccounts } },
} satisfies Record<string, () => Promise<{ usage: string; run: (argv: string[]) => void | Promise<void> }>>

const isCommand = (name: string | undefined): name is keyof typeof commands => name !== undefined && Object.hasOwn(commands, name)

const [command, ...rest] = process.argv.slice(2)
if (isCommand(command)) {
  await (await commands[command]()).run(rest)
} else if (command === 'help' || command === '--help' || command === '-h') {
  process.stdout.write(usage)
  // `agyc help start` reads like `agyc start --help`
  if (command === 'help' && isCommand(rest[0])) process.stdout.write(`\n${(await commands[rest[0]]()).usage}`)
} else {
  // no command is a usage error, as an unknown one: a script that forgot its command must not look successful
  process.stderr.write(`${command === undefined ? 'expected a command' : `unknown command "${command}"`}\n\n${usage}`)
  process.exit(2)
}
