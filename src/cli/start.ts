/** `agyc start` (and `npm start`, through src/main.ts): arguments → config → orchestrator → signals. */
import { endOpenExchanges } from '../api/exchange.ts'
import { ConfigError, loadConfigFile } from '../config/load.ts'
import { OrchestratorError } from '../errors.ts'
import { startOrchestrator } from '../orchestrator.ts'
import { DEFAULT_CONFIG, parseCommand } from './args.ts'

export const startUsage = `usage: agyc start [--config FILE] [--port N] [--host ADDR]

Runs the orchestrator in the foreground.
  -c, --config FILE   the config file (default: ${DEFAULT_CONFIG})
  -p, --port N        listen on this port (PORT in the environment does the same)
      --host ADDR     listen on this address
  -h, --help          this text

Signals: SIGHUP re-reads FILE and reloads the accounts (as POST /admin/reload does);
SIGINT/SIGTERM stop gracefully: new requests get 503, in-flight ones get server.shutdownGraceMs, then exit 0.
A second SIGINT/SIGTERM kills the children, ends open streams with an SSE error event and ends the process at
once by that signal (exit status 130 for SIGINT, 143 for SIGTERM).
`

export async function runStart(argv: string[]): Promise<void> {
  const { values } = parseCommand(argv, {
    config: { type: 'string', short: 'c', default: DEFAULT_CONFIG },
    port: { type: 'string', short: 'p' },
    host: { type: 'string' },
  }, startUsage)

  if (values.help) {
    process.stdout.write(startUsage)
    process.exit(0)
  }

  const portText = values.port ?? process.env.PORT
  const port = portText === undefined ? undefined : Number(portText)
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    process.stderr.write(`--port: expected a port number 0–65535, got "${portText}"\n`)
    process.exit(2)
  }

  const overrides = { port, host: values.host }
  let config
  try {
    config = loadConfigFile(values.config, overrides)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    for (const line of err.problems) process.stderr.write(`${line}\n`)
    process.exit(2)
  }

  const orchestrator = await startOrchestrator(config, { configFile: values.config, overrides })
  const { log } = orchestrator
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now')
      for (const account of orchestrator.dispatcher.accounts) account.killChildren()
      // open answers end now: a stream with an SSE error event (Claude Code retries), the others with a 503
      endOpenExchanges(new OrchestratorError('AGYC_SHUTTING_DOWN', 'the orchestrator was stopped'))
      // The signal again, with its default action: the process ends at once, by that signal (a shell reports 130 for
      // SIGINT, 143 for SIGTERM). process.exit() would first wait ~2 s for every worker thread to be torn down.
      process.removeAllListeners(signal)
      process.kill(process.pid, signal)
      return
    }
    stopping = true
    log.info({ signal }, 'shutting down')
    orchestrator.close().then(() => process.exit(0), (err: unknown) => {
      log.error({ err }, 'shutdown failed')
      process.exit(1)
    })
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  process.on('SIGHUP', () => {
    if (stopping) return
    log.info({ file: values.config }, 'SIGHUP: reloading the config')
    orchestrator.reload().then(
      (result) => log.info(result, 'reloaded'),
      (err: unknown) => {
        if (!(err instanceof ConfigError)) return log.error({ err }, 'reload failed')
        // the same lines as at start-up; the running configuration stays
        for (const line of err.problems) process.stderr.write(`${line}\n`)
        log.error({ problems: err.problems }, 'reload refused: the config file has problems; the running configuration stays')
      },
    )
  })
}
