/**
 * `exec`: one child process per request. The argv comes from the config with `{model}`, `{stateDir}`, `{prompt}` and
 * `{requestFile}` filled in, each inside its own argv element (no shell ever sees them). The child gets its input on
 * stdin and then EOF, answers on stdout, and exits 0. Cancel, timeout and stop kill its whole process group.
 * `prewarm: N` keeps N children started ahead, blocked on stdin until a request arrives (a real agent CLI takes
 * seconds to start; docs/agent-clis.md).
 */
import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { OrchestratorError } from '../../src/errors.ts'
import { droppedByPrompt, estimateInputTokens, lastUserText } from '../../src/protocol/anthropic.ts'
import { writePrivateFile } from '../../src/config/state-dir.ts'
import { Answer } from './answer.ts'
import { LineSplitter } from './process/lines.ts'
import { createLauncher, type Child, type Launcher } from './process/child.ts'
import { holdIfFull } from './flow.ts'
import type { Completion, Session, SessionContext, SessionOutput, SessionRequest } from './types.ts'

export type ExecConfig = Extract<SessionContext['account']['session'], { kind: 'exec' }>

/**
 * How a preset talks to its process per request, in place of the config's `input`/`output` modes (claude-code.ts):
 * what goes to stdin, and a reader for what comes back, one JSON line at a time.
 */
export interface ExecDialect {
  /** the child's stdin for this request, then EOF; throws an OrchestratorError for what cannot be given to it */
  input(req: SessionRequest): string
  reader(answer: Answer, req: SessionRequest): ExecReader
}

export interface ExecReader {
  /** one JSON line of stdout; throwing fails the request and kills the child */
  line(event: { type?: unknown; [k: string]: unknown }): void
  /** the child exited and everything it wrote was read: the completion, or the failure */
  end(code: number | null, signal: NodeJS.Signals | null, child: Child): Completion
}

export interface ExecPreset {
  config: ExecConfig
  dialect: ExecDialect
  /** a folder of the state directory to run in (ChildSpec.workDir) */
  workDir?: string
  /** names the child in errors and logs */
  what: string
}

/** `output: "events"`: Anthropic stream events, and maybe a final `{"type":"message"}` line with the whole message. */
function anthropicEvents(answer: Answer): ExecReader {
  let finalMessage: unknown
  return {
    line(event) {
      if (event.type === 'message') finalMessage = event
      else answer.event(event)
    },
    end(code, signal, child) {
      if (code !== 0) throw new OrchestratorError('AGYC_UPSTREAM_FAILED', child.describeExit(code, signal))
      return finalMessage ? answer.message((finalMessage as { message?: unknown }).message ?? finalMessage) : answer.completion()
    },
  }
}

const PLACEHOLDER = /\{(model|stateDir|prompt|requestFile)\}/g
/** a warm child that died while waiting is replaced after this long, so a child that cannot start does not spin */
const WARM_RETRY_MS = 1_000

export function createExecSession(context: SessionContext, preset?: ExecPreset): Session {
  const config = preset?.config ?? (context.account.session as ExecConfig)
  const dialect = preset?.dialect
  const what = preset?.what ?? 'exec child'
  const usesRequestFile = config.args.some((a) => a.includes('{requestFile}'))
  // `{prompt}` or `{model}` as a whole argument before any "--": the client's text alone in an argv element, where a
  // value starting with "-" would be read as an option of the command (argument injection: a request must not choose
  // the command's arguments). Such a request is refused; "--" before the placeholder makes it plain text.
  const endOfOptions = config.args.indexOf('--')
  const bare = config.args.slice(0, endOfOptions === -1 ? undefined : endOfOptions)
  const bareModel = bare.includes('{model}')
  const barePrompt = bare.includes('{prompt}')
  // a child given the last user turn's text alone cannot see its images or documents: refused, never dropped silently
  const textOnly = !dialect && (config.input === 'prompt' || config.args.some((a) => a.includes('{prompt}')))
  let launcher: Launcher
  const warm: Child[] = []
  const live = new Set<Child>()
  let stopping = false
  let warmRetry: NodeJS.Timeout | undefined

  function spawn(args: readonly string[]): Child {
    const child = launcher.spawn(args, what)
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
    // before any child is taken: a request the dialect cannot render is the client's 400
    const dialectInput = dialect?.input(req)
    const prompt = lastUserText(req.request)
    const dropped = textOnly ? droppedByPrompt(req.request) : undefined
    if (dropped) {
      throw new OrchestratorError('AGYC_INVALID_REQUEST', `${dropped.path}: a "${dropped.type}" block cannot be given to this account's command, which is given the last user turn's text only (input "prompt" or {prompt}; input "request" passes the whole request)`)
    }
    if ((bareModel && req.model.startsWith('-')) || (barePrompt && prompt.startsWith('-'))) {
      const which = bareModel && req.model.startsWith('-') ? `the model "${req.model}"` : 'the last user turn'
      throw new OrchestratorError('AGYC_INVALID_REQUEST', `${which} starts with "-" and would be read as an option of this account's command (its config needs "--" before the placeholder)`)
    }
    const requestJson = JSON.stringify({ ...req.request, model: req.model })
    req.signal.throwIfAborted()
    let requestFile = ''
    if (usesRequestFile) {
      requestFile = join(launcher.tmpDir, `request-${req.id}-${randomBytes(6).toString('hex')}.json`)
      writePrivateFile(requestFile, requestJson)
    }
    const child = childFor(req, prompt, requestFile)
    const answer = new Answer(out, what, estimateInputTokens(req.request))
    const reader = dialect ? dialect.reader(answer, req) : config.output === 'events' ? anthropicEvents(answer) : undefined
    let failure: OrchestratorError | undefined
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
      reader!.line(event)
    }

    child.proc.stdout.setEncoding('utf8')
    child.proc.stdout.on('data', (text: string) => {
      if (failure) return
      idle.refresh()
      written += text.length
      try {
        if (written > config.maxOutputBytes) throw new OrchestratorError('AGYC_UPSTREAM_FAILED', `exec child wrote more than ${config.maxOutputBytes} bytes`)
        if (reader) for (const line of lines.push(text)) onLine(line)
        else if (config.output === 'text') answer.textPiece(text)
        else collected += text
        holdIfFull(child.proc.stdout, out)
      } catch (err) {
        fail(err instanceof OrchestratorError ? err : new OrchestratorError('AGYC_UPSTREAM_FAILED', `exec child: ${(err as Error).message}`))
      }
    })

    if (dialectInput !== undefined) child.proc.stdin.end(dialectInput)
    else if (config.input === 'request') child.proc.stdin.end(requestJson)
    else if (config.input === 'prompt') child.proc.stdin.end(prompt)
    else child.proc.stdin.end()

    try {
      const { code, signal } = await child.closed
      if (failure) throw failure
      if (reader) {
        // a dialect reads what a failing child said last (its error event); plain events only from a clean exit
        if (code === 0 || dialect) onLine(lines.rest())
        return reader.end(code, signal, child)
      }
      if (code !== 0) throw new OrchestratorError('AGYC_UPSTREAM_FAILED', child.describeExit(code, signal))
      if (config.output === 'text') return answer.completion()
      let message: unknown
      try {
        message = JSON.parse(collected)
      } catch {
        throw new OrchestratorError('AGYC_UPSTREAM_FAILED', `exec child's output is not one JSON message: ${JSON.stringify(collected.slice(0, 200))}`)
      }
      return answer.message(message)
    } finally {
      clearTimeout(idle)
      req.signal.removeEventListener('abort', onAbort)
      if (requestFile) rmSync(requestFile, { force: true })
    }
  }

  return {
    async start() {
      launcher = createLauncher(context, { ...config, workDir: preset?.workDir })
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
