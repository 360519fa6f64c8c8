/**
 * `stdio`: one long-lived child per account, speaking line-delimited JSON over stdin/stdout (README, "stdio
 * protocol"). Requests carry ids, so up to `maxConcurrency` share the pipe. The child starts with the account, must
 * answer a first ping, is pinged while it runs, and is restarted by the supervisor when it dies or breaks the
 * protocol; requests in flight then fail at once, and requests arriving while it is down fail fast.
 */
import { OrchestratorError } from '../../src/errors.ts'
import { estimateInputTokens } from '../../src/protocol/anthropic.ts'
import { Answer } from './answer.ts'
import { readLines } from './process/lines.ts'
import { createLauncher, logStderr, type Child } from './process/child.ts'
import { holdIfFull } from './flow.ts'
import { Supervisor } from './process/supervisor.ts'
import type { Completion, Session, SessionContext, SessionOutput, SessionRequest } from './types.ts'
import { fromAnthropicError } from './upstream-errors.ts'

type StdioConfig = Extract<SessionContext['account']['session'], { kind: 'stdio' }>

interface InFlight {
  readonly out: SessionOutput
  readonly answer: Answer
  readonly idle: NodeJS.Timeout
  resolve(completion: Completion): void
  reject(error: OrchestratorError): void
}

/** what one stdout line of the child may say */
interface Line {
  type?: unknown
  id?: unknown
  event?: { type?: unknown; [k: string]: unknown }
  message?: unknown
  error?: unknown
  retry_after?: unknown
}

export function createStdioSession(context: SessionContext): Session {
  const config = context.account.session as StdioConfig
  const inFlight = new Map<string, InFlight>()
  const pongs = new Map<string, () => void>()
  let supervisor: Supervisor
  let pingTimer: NodeJS.Timeout | undefined
  let pingOutstanding = false
  let pingSeq = 0

  function send(child: Child | undefined, message: object): void {
    child?.proc.stdin.write(`${JSON.stringify(message)}\n`)
  }

  function settle(id: string): InFlight | undefined {
    const pending = inFlight.get(id)
    if (!pending) return undefined
    inFlight.delete(id)
    clearTimeout(pending.idle)
    return pending
  }

  function onLine(child: Child, text: string): void {
    if (text.trim() === '') return
    let line: Line
    try {
      line = JSON.parse(text) as Line
      if (!line || typeof line !== 'object') throw new Error('not an object')
    } catch {
      // stdout belongs to the protocol: a stray line means we can no longer trust what the child says
      supervisor.restart(`stdio child broke the protocol: ${JSON.stringify(text.slice(0, 200))}`)
      return
    }
    const id = typeof line.id === 'string' ? line.id : String(line.id)
    switch (line.type) {
      case 'pong':
        pongs.get(id)?.()
        return
      case 'event': {
        const pending = inFlight.get(id)
        if (!pending || !line.event) return
        pending.idle.refresh()
        try {
          pending.answer.event(line.event)
          // one stdout serves every request of the child: a stalled reader pauses it for all, until its stall limit
          holdIfFull(child.proc.stdout, pending.out)
        } catch (err) {
          settle(id)?.reject(err as OrchestratorError)
        }
        return
      }
      case 'message': {
        const pending = settle(id)
        if (!pending) return
        try {
          pending.resolve(pending.answer.message(line.message))
        } catch (err) {
          pending.reject(err as OrchestratorError)
        }
        return
      }
      case 'error':
        settle(id)?.reject(fromAnthropicError(line.error, 'stdio child', typeof line.retry_after === 'number' ? line.retry_after : undefined))
        return
      default:
        return // unknown types are ignored: the protocol may grow
    }
  }

  function ping(child: Child, id: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pongs.delete(id)
        reject(new Error(`no pong within ${timeoutMs} ms`))
      }, timeoutMs)
      pongs.set(id, () => {
        clearTimeout(timer)
        pongs.delete(id)
        resolve()
      })
      void child.closed.then(() => { clearTimeout(timer); pongs.delete(id) })
      send(child, { type: 'ping', id })
    })
  }

  /** wires a fresh child's pipes; ready once it answered the first ping */
  function ready(child: Child): Promise<void> {
    readLines(child.proc.stdout, config.maxLineBytes, (line) => onLine(child, line),
      (why) => supervisor.restart(`stdio child broke the protocol: ${why}`))
    logStderr(context, child)
    return ping(child, 'start', config.startTimeoutMs)
  }

  function failAll(reason: string): void {
    pingOutstanding = false // a ping the dead child owed must not condemn its successor
    for (const id of [...inFlight.keys()]) settle(id)?.reject(new OrchestratorError('AGYC_UPSTREAM_FAILED', reason))
  }

  function heartbeat(): void {
    const child = supervisor.child
    if (supervisor.state !== 'up' || !child) return
    // stdout paused for a client that is not reading: a pong could not be read, which says nothing of the child
    if (child.proc.stdout.isPaused()) return
    if (pingOutstanding) {
      pingOutstanding = false
      supervisor.restart(`stdio child did not answer a ping within ${config.pingIntervalMs} ms`)
      return
    }
    pingOutstanding = true
    ping(child, `ping-${++pingSeq}`, config.pingIntervalMs * 2).then(() => { pingOutstanding = false }, () => {})
  }

  function run(req: SessionRequest, out: SessionOutput): Promise<Completion> {
    const child = supervisor.child
    if (supervisor.state !== 'up' || !child) {
      const why = supervisor.lastError ? ` (${supervisor.lastError})` : ''
      return Promise.reject(new OrchestratorError('AGYC_UPSTREAM_FAILED', `stdio child is ${supervisor.state}${why}`))
    }
    const id = String(req.id)
    return new Promise<Completion>((resolve, reject) => {
      const onAbort = (): void => {
        if (!settle(id)) return
        send(child, { type: 'cancel', id })
        reject(new OrchestratorError('AGYC_CANCELLED', 'the request was cancelled'))
      }
      const idle = setTimeout(() => {
        if (!settle(id)) return
        send(child, { type: 'cancel', id })
        reject(new OrchestratorError('AGYC_UPSTREAM_TIMEOUT', `stdio child was silent on this request for ${config.idleTimeoutMs} ms`))
      }, config.idleTimeoutMs)
      const done = (): void => req.signal.removeEventListener('abort', onAbort)
      inFlight.set(id, {
        out,
        answer: new Answer(out, 'stdio child', estimateInputTokens(req.request)),
        idle,
        resolve: (completion) => { done(); resolve(completion) },
        reject: (error) => { done(); reject(error) },
      })
      req.signal.addEventListener('abort', onAbort, { once: true })
      send(child, { type: 'request', id, model: req.model, stream: req.stream, request: { ...req.request, model: req.model } })
    })
  }

  return {
    async start() {
      const launcher = createLauncher(context, config)
      const args = config.args.map((a) => a.replaceAll('{stateDir}', launcher.stateDir))
      supervisor = new Supervisor(context, launcher, args, config.restart, { ready, exited: failAll }, 'stdio child')
      await supervisor.start()
      if (config.pingIntervalMs > 0) pingTimer = setInterval(heartbeat, config.pingIntervalMs)
    },
    run,
    async stop() {
      clearInterval(pingTimer)
      await supervisor?.stop()
      failAll('the account is stopping')
    },
    reset() {
      supervisor?.reset()
    },
    get child() {
      return supervisor?.info
    },
  }
}
