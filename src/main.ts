/** Entry point: arguments → config → orchestrator → signals. */
import { parseArgs } from 'node:util'
import { ConfigError, loadConfigFile } from './config/load.ts'
import { startOrchestrator } from './orchestrator.ts'

const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`agyc needs Node ≥ 22.18 (this is ${process.version}); run it through npm (npm start), which uses the Node 24 it installs\n`)
  process.exit(1)
}

const { values } = parseArgs({
  options: {
    config: { type: 'string', short: 'c', default: 'config.example.json' },
    port: { type: 'string', short: 'p' },
    host: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  allowPositionals: true,
})

if (values.help) {
  process.stdout.write(`usage: agyc start [--config FILE] [--port N] [--host ADDR]\n  PORT in the environment overrides the config's port too.\n`)
  process.exit(0)
}

const portText = values.port ?? process.env.PORT
const port = portText === undefined ? undefined : Number(portText)
if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
  process.stderr.write(`--port: expected a port number 0–65535, got "${portText}"\n`)
  process.exit(2)
}

let config
try {
  config = loadConfigFile(values.config, { port, host: values.host })
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  for (const line of err.problems) process.stderr.write(`${line}\n`)
  process.exit(2)
}

const orchestrator = await startOrchestrator(config)
let stopping = false
const stop = (signal: string): void => {
  if (stopping) {
    orchestrator.log.warn({ signal }, 'second signal: exiting now')
    for (const account of orchestrator.dispatcher.accounts) account.killChildren()
    process.exit(1)
  }
  stopping = true
  orchestrator.log.info({ signal }, 'shutting down')
  orchestrator.close().then(() => process.exit(0), (err: unknown) => {
    orchestrator.log.error({ err }, 'shutdown failed')
    process.exit(1)
  })
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
