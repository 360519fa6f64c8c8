/**
 * One account's worker thread as the main thread holds it: a piscina pool of exactly one long-lived thread, the attach
 * task that lives as long as the worker, its data port (commands out, batched per event-loop turn; events in) and its
 * control port (comlink). It knows nothing of jobs, health or state: the account handle decides when to attach, retire,
 * terminate or stop, and hears what the worker says and when its task ended.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads'
import { Piscina } from 'piscina'
import * as Comlink from 'comlink'
import type { Logger } from 'pino'
import type { AccountConfig } from '../config/schema.ts'
import { portEndpoint } from '../protocol/comlink-port.ts'
import type { ControlApi, ToWorker } from '../protocol/messages.ts'
import { encodeToWorker } from '../protocol/wire.ts'
import { workerEntry } from '../loader/worker-code.ts'
import { ACCOUNT_WORKER } from '../../workers/entry.ts'

export interface LinkListener {
  /** a batch of events from the current worker, as it crossed (the handle decodes it) */
  message(raw: unknown): void
  /** the current worker's attach task ended: stopped on request (`err` undefined), or the worker died */
  ended(err: unknown): void
  /** whether commands wait in the outbox instead of leaving now (a worker still starting) */
  holding(): boolean
}

/** the most a worker's young generation (V8's nursery) may grow to */
export const WORKER_YOUNG_GENERATION_MB = 48

/** how long a worker asked to stop may take before its thread is terminated */
const STOP_GRACE_MS = 3_000

export class WorkerLink {
  readonly #account: AccountConfig
  readonly #heartbeatMs: number
  readonly #listener: LinkListener
  readonly #pool: Piscina
  #data: MessagePort | undefined
  #control: Comlink.Remote<ControlApi> | undefined
  /** commands already in their wire form (protocol/wire.ts) */
  #outbox: unknown[] = []
  #flushScheduled = false
  /** settles when the current attach task ends, whichever way */
  #task: Promise<void> = Promise.resolve()

  constructor(account: AccountConfig, heartbeatMs: number, log: Logger, listener: LinkListener) {
    this.#account = account
    this.#heartbeatMs = heartbeatMs
    this.#listener = listener
    this.#pool = new Piscina({
      // plain JS, stripped once from the sources (worker-code.ts)
      filename: workerEntry(ACCOUNT_WORKER, (reason) => log.warn({ reason }, 'account workers run their TypeScript sources')),
      // the thread starts with its attach task, not with the pool: the dispatcher's start-up ramp (and a lazy account's
      // first request) decides when; ended, it goes at once (idleTimeout 0): the next attach starts a fresh one
      minThreads: 0,
      maxThreads: 1,
      // 'sync' (the default) parks an idle worker in Atomics.wait: its ports, timers and child pipes go deaf
      atomics: 'disabled',
      concurrentTasksPerWorker: 1,
      idleTimeout: 0,
      // V8 grows a busy worker's young generation as it sees fit (Node allows a worker 192 MB here): an http worker's
      // reached 134 MB under sustained load, eight of them 1.3–1.4 GB of RSS; bounded, ~900 MB, for no more CPU a
      // request (16 MB cost one busy worker ~10 %; docs/performance.md, "Round 2, stop 14")
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
      closeTimeout: 2_000,
    })
    // a worker that fails to start rejects its attach task; keep piscina's own 'error' events from crashing us
    this.#pool.on('error', (err: Error) => log.error({ err }, 'worker pool error'))
  }

  /** a worker is attached and current (it may still be starting) */
  get attached(): boolean {
    return this.#data !== undefined
  }

  /** the current worker's control plane, if one is attached */
  get control(): Comlink.Remote<ControlApi> | undefined {
    return this.#control
  }

  /** Starts a worker thread with its attach task. piscina runs it once a retired worker's task has ended. */
  attach(): void {
    const data = new MessageChannel()
    const control = new MessageChannel()
    this.#data = data.port1
    data.port1.on('message', this.#listener.message)
    this.#control = Comlink.wrap<ControlApi>(portEndpoint(control.port1))
    const task = { account: this.#account, data: data.port2, control: control.port2, heartbeatMs: this.#heartbeatMs }
    this.#task = this.#pool.run(task, { transferList: [data.port2, control.port2] }).then(
      () => this.#ended(data.port1, control.port1, undefined),
      (err: unknown) => this.#ended(data.port1, control.port1, err),
    )
  }

  #ended(data: MessagePort, control: MessagePort, err: unknown): void {
    data.close()
    control.close()
    if (this.#data !== data) return // a retired worker: nothing about it is news
    this.#data = undefined
    this.#control = undefined
    this.#outbox = []
    this.#listener.ended(err)
  }

  send(command: ToWorker): void {
    this.#outbox.push(encodeToWorker(command))
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      setImmediate(this.flush)
    }
  }

  /** Everything bound for the worker in one event-loop turn travels as one message; held while it starts. */
  flush = (): void => {
    this.#flushScheduled = false
    const batch = this.#outbox
    if (batch.length === 0 || this.#listener.holding()) return
    this.#outbox = []
    this.#data?.postMessage(batch)
  }

  /**
   * Stops the current worker quietly, for a reason of the handle's (idle, an operator's reset): its last events are
   * not heard, and its end is not reported. `childPids`: the process groups it reported, killed once its task ends
   * (a child outlives the thread that spawned it). A next worker may be attached at once.
   */
  retire(childPids: readonly number[]): void {
    const data = this.#data
    if (!data) return
    data.off('message', this.#listener.message)
    const control = this.#control
    this.#data = undefined // #ended sees the worker is no longer current and only closes its ports
    this.#control = undefined
    this.#outbox = []
    const stuck = setTimeout(() => this.terminate(), STOP_GRACE_MS)
    void control?.stop().catch(() => { /* the reply is lost when the worker closes its port: the task's end counts */ })
    void this.#task.finally(() => {
      clearTimeout(stuck)
      killGroups(childPids)
    })
  }

  /** Ends the thread at once (a hung event loop); its task rejects, and `ended` reports it. */
  terminate(): void {
    void this.#pool.threads[0]?.terminate()
  }

  /** Stops the current worker: what is in the outbox leaves, then the session's stop; waits at most a grace. */
  async stop(): Promise<void> {
    this.flush()
    try {
      // the task's end is the answer that counts: comlink's reply may be lost when the worker closes the port
      await Promise.race([this.#control?.stop().then(() => this.#task), this.#task, new Promise((r) => setTimeout(r, STOP_GRACE_MS))])
    } catch { /* the worker is gone already */ }
  }

  /** Ends the pool for good (its thread, if one still runs). */
  close(): Promise<void> {
    return this.#pool.destroy()
  }
}

/** SIGKILL each process group; one already gone is fine. */
export function killGroups(pids: Iterable<number>): void {
  for (const pid of pids) {
    try { process.kill(-pid, 'SIGKILL') } catch { /* already gone */ }
  }
}
