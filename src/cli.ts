/** `agyc`: one command per operation (bin/agyc runs this file on the Node npm installed). */
import { accountsUsage, runAccounts } from './cli/accounts.ts'
import { runBench, benchUsage } from './cli/bench.ts'
import { runStart, startUsage } from './cli/start.ts'
import { runStatus, statusUsage } from './cli/status.ts'
import { runValidate, validateUsage } from './cli/validate.ts'

const usage = `usage: agyc <command> [options]

Commands:
  start [--config FILE]   run the orchestrator (SIGHUP reloads FILE)
  validate FILE           check a config file; one line per problem
  status [--url URL]      the accounts of a running orchestrator, as a table
  bench [ARGS…]           run the benchmark (bench/run.ts)
  accounts login ID       log an agent-CLI account in, inside its own state directory

agyc <command> --help shows a command's options.
`

const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`agyc needs Node ≥ 22.18 (this is ${process.version})\n`)
  process.exit(1)
}

const [command, ...rest] = process.argv.slice(2)
switch (command) {
  case 'start': await runStart(rest); break
  case 'validate': runValidate(rest); break
  case 'status': await runStatus(rest); break
  case 'bench': runBench(rest); break
  case 'accounts': runAccounts(rest); break
  case undefined: case 'help': case '--help': case '-h':
    process.stdout.write(usage)
    // `agyc help start` reads like `agyc start --help`
    if (command === 'help' && rest[0]) process.stdout.write(`\n${{ start: startUsage, validate: validateUsage, status: statusUsage, bench: benchUsage, accounts: accountsUsage }[rest[0]] ?? ''}`)
    break
  default:
    process.stderr.write(`unknown command "${command}"\n\n${usage}`)
    process.exit(2)
}
