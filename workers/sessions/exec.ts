/**
 * `exec`: one child process per request. The argv comes from the config with `{model}`, `{stateDir}`, `{prompt}` and
 * `{requestFile}` filled in, each inside its own argv element (no shell ever sees them). The child gets its input on
 * stdin and then EOF, answers on stdout, and exits 0. Cancel, timeout and stop kill its whole process group.
 * `prewarm: N` keeps N children started ahead, blocked on stdin until a request arrives (a real agent CLI takes
 * seconds to start; agent-clis.md).
 */
import { randomBytes } from 'node:crypto'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { OrchestratorError } from '../../src/errors.ts'
import { estimateInputTokens, lastUserText } from '../../src/protocol/anthropic.ts'
import { Answer, LineSplitter } from './answer.ts'
import { createLauncher, type Child, type Launcher } from './child.ts'
import type { Completion, Session, SessionContext, SessionOutput, SessionRequest } from './types.ts'

type ExecConfig = Extract<SessionContext['account']['session'], { kind: 'exec' }>

const PLACEHOLDER = /\{(model|stateDir|prompt|requestFile)\}/g
/** a warm child that died while waiting is replaced after this long, so a child that cannot start does not spin */
const WARM_RETRY_MS = 1_000

export function createExecSession(context: SessionContext): Session {
  const config = context.account.session as ExecConfig
  const usesRequestFile = config.args.some((a) => a.includes('{requestFile}'))
  let launcher: Launcher
  const warm: Child[] = []
  const live = new Set<Child>()
  let stopping = false
  let warmRetry: NodeJS.Timeout | undefined

  function spawn(args: readonly string[]): Child {
    const child = launcher.spawn(args, 'exec child')
    live.add(child)
    void child.closed.then(() => live.delete(child))
    return child
  }

  function refill(): void {
    while (!stopping && warm.length < config.prewarm) {
      const child = spawn(config.args.map((a) => a.replaceAll('{stateDir}', launcher.stateDir)))
      warm.push(child)
      void child.closed.then(() => {
        const i = warm.indexOf(child)
        if (i < 0) return // taken by a request
        warm.splice(i, 1)
        context.emit({ kind: 'log', level: 'warn', msg: 'warm exec child died while waiting', fields: { reason: child.describeExit(null, null) } })
        warmRetry ??= setTimeout(() => { warmRetry = undefined; refill() }, WARM_RETRY_MS)
      })
    }
  }

  /** a warm child if one waits (and is alive), else a cold one */
  function childFor(req: SessionRequest, prompt: string, requestFile: string): Child {
    for (let child = warm.shift(); child; child = warm.shift()) {
      refill()
      if (!child.exited) return child
    }
    const values: Record<string, string> = { model: req.model, stateDir: launcher.stateDir, prompt, requestFile }
    return spawn(config.args.map((a) => a.replace(PLACEHOLDER, (_, name: string) => values[name])))
  }

  async function run(req: SessionRequest, out: SessionOutput): Promise<Completion> {
    const prompt = lastUserText(req.request)
    const requestJson = JSON.stringify({ ...req.request, model: req.model })
    req.signal.throwIfAborted()
    let requestFile = ''
    if (usesRequestFile) {
      requestFile = join(launcher.tmpDir, `request-${req.id}-${randomBytes(6).toString('hex')}.json`)
      writeFileSync(requestFile, requestJson, { mode: 0o600 })
    }
    const child = childFor(req, prompt, requestFile)
    const answer = new Answer(out, 'exec child', estimateInputTokens(req.request))
    let failure: OrchestratorError | undefined
    let finalMessage: unknown
    let collected = ''
    let written = 0
    const lines = new LineSplitter(config.maxOutputBytes)

    const fail = (error: OrchestratorError): void => {
      failure ??= error
      void child.kill()
    }
    const onAbort = (): void => fail(new OrchestratorError('AGYC_CANCELLED', 'the request was cancelled'))
    req.signal.addEventListener('abort', onAbort, { once: true })
    const idle = setTimeout(() => fail(new OrchestratorError('AGYC_UPSTREAM_TIMEOUT', `exec child was silent for ${config.idleTimeoutMs} ms`)), config.idleTimeoutMs)

    const onLine = (line: string): void => {
      if (line.trim() === '') return
      let event: { type?: unknown; message?: unknown; [k: string]: unknown }
      try {
        event = JSON.parse(line) as typeof event
      } catch {
        throw new OrchestratorError('AGYC_UPSTREAM_FAILED', `exec child printed a line that is not JSON: ${JSON.stringify(line.slice(0, 200))}`)
      }
      if (event?.type === 'message') finalMessage = event
      else answer.event(event)
    }

    child.proc.stdout.setEncoding('utf8')
    child.proc.stdout.on('data', (text: string) => {
      if (failure) return
      idle.refresh()
      written += text.length
      try {
        if (written > config.maxOutputBytes) throw new OrchestratorError('AGYC_UPSTREAM_FAILED', `exec child wrote more than ${config.maxOutputBytes} bytes`)
        switch (config.output) {
          case 'text': answer.textPiece(text); break
          case 'message': collected += text; break
          case 'events': for (const line of lines.push(text)) onLine(line); break
        }
      } catch (err) {
        fail(err instanceof OrchestratorError ? err : new OrchestratorError('AGYC_UPSTREAM_FAILED', `exec child: ${(err as Error).message}`))
      }
    })

    if (config.input === 'request') child.proc.stdin.end(requestJson)
    else if (config.input === 'prompt') child.proc.stdin.end(prompt)
    else child.proc.stdin.end()

    try {
      const { code, signal } = await child.closed
      if (failure) throw failure
      if (code !== 0) throw new OrchestratorError('AGYC_UPSTREAM_FAILED', child.describeExit(code, signal))
      switch (config.output) {
        case 'text':
          return answer.completion()
        case 'message': {
          let message: unknown
          try {
            message = JSON.parse(collected)
          } catch {
            throw new OrchestratorError('AGYC_UPSTREAM_FAILED', `exec child's output is not one JSON message: ${JSON.stringify(collected.slice(0, 200))}`)
          }
          return answer.message(message)
        }
        default:
          onLine(lines.rest())
          return finalMessage ? answer.message((finalMessage as { message?: unknown }).message ?? finalMessage) : answer.completion()
      }
    } finally {
      clearTimeout(idle)
      req.signal.removeEventListener('abort', onAbort)
      if (requestFile) rmSync(requestFile, { force: true })
    }
  }

  return {
    async start() {
      launcher = createLauncher(context, config)
      refill()
    },
    run,
    async stop() {
      stopping = true
      clearTimeout(warmRetry)
      warm.length = 0
      await Promise.all([...live].map((child) => child.kill()))
    },
  }
}
