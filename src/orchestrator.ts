/**
 * Builds and runs one orchestrator: accounts' workers, the dispatcher, the HTTP server. Used by `main.ts` and by the
 * tests (which start it in-process on port 0 and talk to it over real HTTP).
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { DestinationStream } from 'pino'
import { isDeepStrictEqual } from 'node:util'
import { createHandler } from './api/app.ts'
import { closeCheckPool } from './api/body-check.ts'
import { deferContinue } from './api/body.ts'
import { createClientErrorHandler } from './api/client-error.ts'
import { createGuard } from './api/guard.ts'
import { ConfigError, loadConfigFile, type Overrides } from './config/load.ts'
import type { Config } from './config/schema.ts'
import { Dispatcher } from './dispatch/dispatcher.ts'
import { Reconciler, type ReconcilePlan } from './dispatch/reconcile.ts'
import { createLogger, type Logger } from './log.ts'
import { UsageLedger } from './usage/ledger.ts'
import { declaredIn } from './usage/model-names.ts'
import { join } from 'node:path'
import { watch } from './metrics.ts'
import type { ClusterNode } from './cluster/node.ts'

export interface ReloadResult extends ReconcilePlan {
  /** settings outside `accounts` that changed and were applied now: `dispatcher.<key>` (see Dispatcher.reconfigure) */
  applied: string[]
  /**
   * settings that changed but only take effect after a restart: top-level sections (`server`, `health`, `log`…) and
   * `dispatcher.<key>` for the dispatcher settings that are not live
   */
  restartRequired: string[]
}

export interface OrchestratorOptions {
  logDestination?: DestinationStream
  /** the file `reload()` re-reads (SIGHUP, POST /admin/reload), with the same command-line overrides */
  configFile?: string
  overrides?: Overrides
}

export interface Orchestrator {
  readonly url: string
  readonly config: Config
  readonly dispatcher: Dispatcher
  readonly server: Server
  readonly log: Logger
  readonly reconciler: Reconciler
  /** this node of a fleet, when `cluster` is configured */
  readonly cluster: ClusterNode | undefined
  /**
   * Re-reads the config file and brings the accounts to it; an invalid file throws `ConfigError` (one line per
   * problem) and changes nothing.
   */
  reload(): Promise<ReloadResult>
  /** answer new requests 503, let in-flight requests finish within `graceMs`, stop the workers and their children */
  close(graceMs?: number): Promise<void>
}

export async function startOrchestrator(config: Config, options: OrchestratorOptions = {}): Promise<Orchestrator> {
  const log = createLogger(config.log, options.logDestination)
  const usageFile = join(config.stateRoot, 'usage.json')
  const ledger = UsageLedger.load(usageFile, (problem, setAside) => log.error({ problem, setAside }, 'usage file was corrupt: set aside, starting from zero'),
    Date.now, declaredIn(() => config.accounts))
  // A fleet: src/cluster is loaded only when configured (node-redis, its timers and metrics), so a single instance
  // pays nothing for it. The node starts connecting now; with Redis down it serves from local state (fail-open).
  const cluster = config.cluster ? new (await import('./cluster/node.ts')).ClusterNode(config.cluster, log) : undefined
  const dispatcher = new Dispatcher(config.dispatcher, config.accounts, { health: config.health, log, ledger, shared: cluster?.sharedFor })
  const route = cluster?.bind(dispatcher)
  // from now on the names the running accounts declare (a reload replaces them)
  ledger.declared = declaredIn(() => dispatcher.accounts.map((a) => a.config))
  const saveUsage = (): void => {
    if (!ledger.dirty) return
    try { ledger.save(usageFile) } catch (err) { log.error({ err }, 'could not save the usage file') }
  }
  const usageSaver = setInterval(saveUsage, 10_000).unref()
  const reconciler = new Reconciler(dispatcher, log)
  const unwatch = watch(dispatcher)
  const startedAt = performance.now()
  await dispatcher.start()
  let closing = false
  let running = config

  async function reload(): Promise<ReloadResult> {
    if (!options.configFile) throw new ConfigError(['this orchestrator was started without a config file: nothing to reload'])
    const next = loadConfigFile(options.configFile, options.overrides)
    const dispatcherChanges = dispatcher.reconfigure(next.dispatcher)
    const restartRequired = (Object.keys(next) as (keyof Config)[]).flatMap((key) => {
      if (key === 'dispatcher') return dispatcherChanges.restartRequired
      return key !== 'accounts' && !isDeepStrictEqual(next[key], running[key]) ? [key] : []
    })
    if (dispatcherChanges.applied.length > 0) log.info({ applied: dispatcherChanges.applied }, 'reload: settings applied')
    // said on every reload until the restart: the running process still has the old values
    if (restartRequired.length > 0) log.warn({ restartRequired }, 'reload: these settings changed but take effect only after a restart')
    const plan = await reconciler.apply(next.accounts)
    running = { ...running, accounts: next.accounts }
    return { ...plan, applied: dispatcherChanges.applied, restartRequired }
  }

  const handle = createHandler(
    { config, dispatcher, log, isClosing: () => closing, operations: { reload, retiring: (a) => reconciler.retiring(a) },
      cluster: cluster && route ? { route, status: (limit) => cluster.status(limit), summary: () => cluster.summary() } : undefined },
    // a peer forwarding a request names this node by its advertised host: served like the bind address
    createGuard(config.cluster ? { ...config.server, allowedHosts: [...config.server.allowedHosts, new URL(config.cluster.advertiseUrl).hostname] } : config.server, log))
  const limits = config.server
  const server = createServer({
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs, // slow-headers clients are cut off (Node's default is 60 s)
    // the whole request must arrive in time; the answer is not bounded by it (node stops the clock once the request is
    // complete), a streamed answer may run for minutes under the dispatcher's own deadline
    requestTimeout: limits.receiveTimeoutMs,
    // node checks those timeouts on this period (default 30 s, which would stretch a 10 s header timeout to 40 s)
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 2))),
    keepAliveTimeout: 65_000,
    requireHostHeader: false, // the guard refuses a missing Host itself, in the Anthropic error shape
  }, handle)
  server.on('checkContinue', deferContinue(server))
  // any other `Expect`: node would answer a bare 417 itself; the guard answers it in the error shape, logged and counted
  server.on('checkExpectation', handle)
  server.on('clientError', createClientErrorHandler(log))
  server.listen(config.server.port, config.server.host)
  await new Promise<void>((resolve, reject) => {
    if (server.listening) resolve()
    server.once('listening', resolve)
    server.once('error', reject)
  })
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  const url = `http://${host}:${address.port}`
  log.info({ url, accounts: dispatcher.accounts.length, readyMs: Math.round(performance.now() - startedAt) }, 'listening')

  let closed: Promise<void> | undefined
  async function close(graceMs = config.server.shutdownGraceMs): Promise<void> {
    closed ??= (async () => {
      closing = true
      // out of the membership first: the other nodes stop forwarding here while what runs finishes
      const left = cluster?.leave()
      reconciler.close()
      dispatcher.close()
      // The listener stays open while in-flight requests finish: a new request, on a new connection too, gets a 503 in
      // the error shape (with `connection: close`) rather than a refused connection a client cannot tell from a crash.
      server.closeIdleConnections()
      const deadline = Date.now() + graceMs
      while (dispatcher.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25))
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()))
      await dispatcher.stop()
      await closeCheckPool()
      clearInterval(usageSaver)
      saveUsage()
      unwatch()
      await left
      await cluster?.close()
      server.closeAllConnections()
      await serverClosed
      log.info('stopped')
    })()
    return closed
  }

  return { url, config, dispatcher, server, log, reconciler, cluster, reload, close }
}
