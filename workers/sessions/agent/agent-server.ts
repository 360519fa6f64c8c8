/**
 * A long-lived agent CLI that serves many requests over JSON-RPC (Gemini CLI `--acp`, Codex `app-server`): one child
 * per account, kept up by the Supervisor (restarts with backoff, `failed` after too many), a handshake before it
 * counts as ready, and a fresh conversation per request (an ACP session, a Codex thread), so requests stay
 * independent. Up to `maxConcurrency` requests share the child. The protocol modules say what to send; this one owns
 * the child, the idle timeout, cancellation, and failing what was in flight when the child dies.
 */
import { OrchestratorError } from '../../../src/errors.ts'
import { estimateInputTokens } from '../../../src/protocol/anthropic.ts'
import type { RestartPolicy } from '../process/supervisor.ts'
import { Supervisor } from '../process/supervisor.ts'
import { Answer } from '../answer.ts'
import { createLauncher, logStderr, type Child, type ChildSpec } from '../process/child.ts'
import { JsonRpcPeer, type RpcParams } from './json-rpc.ts'
import { renderPrompt } from './transcript.ts'
import type { Prompt } from '../bridge/types.ts'
import type { Completion, Session, SessionContext, SessionOutput, SessionRequest } from '../types.ts'

export interface Turn {
  readonly done: Promise<Completion>
  /** the client left or the deadline passed: ask the agent to stop (best effort) */
  cancel(): void
}

/** A turn under way, as far as its text goes: whether it wrote, and whether the CLI marked a paragraph break since. */
export interface TextState {
  readonly context: TurnContext
  wrote: boolean
  paragraph: boolean
}

/** Appends a piece of the agent's message; a paragraph the CLI marked apart (a tool call between) starts after a blank line. */
export function appendText(run: TextState, piece: string): void {
  if (run.paragraph && run.wrote) run.context.answer.textPiece('\n\n')
  run.paragraph = false
  run.context.answer.textPiece(piece)
  run.wrote = true
}

export interface TurnContext {
  readonly peer: JsonRpcPeer
  /** the conversation as one prompt, with the request's base64 images when the CLI takes them */
  readonly prompt: Prompt
  readonly answer: Answer
  readonly request: SessionRequest
  /** the working directory the CLI runs in */
  readonly cwd: string
  /** the agent said something about this turn: the idle timeout starts over */
  touch(): void
}

export interface AgentProtocol {
  /** `"jsonrpc":"2.0"` on every message */
  readonly tagged: boolean
  handshake(peer: JsonRpcPeer): Promise<void>
  /**
   * Why the CLI cannot take an image with a prompt now (an agent that did not offer it at its handshake), or
   * undefined when it can: then the request's base64 images go with the prompt.
   */
  imagesRefused?(): string | undefined
  turn(context: TurnContext): Turn
  notification(method: string, params: RpcParams): void
  request(method: string, params: RpcParams): unknown
}

export interface AgentServerOptions {
  what: string
  spec: ChildSpec
  protocol: AgentProtocol
  startTimeoutMs: number
  idleTimeoutMs: number
  maxLineBytes: number
  restart: RestartPolicy
  /** writes the CLI's settings into the state directory before each start */
  prepare(): void
  /** the tool bridge shares the CLI (bridge/shared-cli.ts): told when a handshaken peer is up, and when it is gone */
  readonly upstream?: { up(peer: JsonRpcPeer): void; down(reason: string): void }
}

export function createAgentServerSession(context: SessionContext, options: AgentServerOptions): Session {
  const { what, protocol } = options
  let supervisor: Supervisor
  let peer: JsonRpcPeer | undefined
  let cwd = ''
  const inFlight = new Set<(error: OrchestratorError) => void>()

  async function ready(child: Child): Promise<void> {
    logStderr(context, child)
    const fresh = new JsonRpcPeer(child, protocol.tagged, {
      notification: (method, params) => protocol.notification(method, params),
      request: (method, params) => protocol.request(method, params),
      stray: (line) => context.emit({ kind: 'log', level: 'warn', msg: `${what} printed a line that is not JSON-RPC`, fields: { line } }),
    }, options.maxLineBytes)
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        protocol.handshake(fresh),
        new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no handshake within ${options.startTimeoutMs} ms`)), options.startTimeoutMs) }),
      ])
    } finally {
      clearTimeout(timer)
    }
    peer = fresh
    options.upstream?.up(fresh)
  }

  function exited(reason: string): void {
    peer = undefined
    options.upstream?.down(reason)
    for (const fail of [...inFlight]) fail(new OrchestratorError('AGYC_UPSTREAM_FAILED', reason))
  }

  function run(req: SessionRequest, out: SessionOutput): Promise<Completion> {
    let prompt: Prompt
    try {
      const refused = protocol.imagesRefused?.()
      prompt = renderPrompt(req.request, what, refused === undefined ? { images: true } : { noImages: refused })
    } catch (err) {
      return Promise.reject(err)
    }
    const current = peer
    if (supervisor.state !== 'up' || !current) {
      const why = supervisor.lastError ? ` (${supervisor.lastError})` : ''
      return Promise.reject(new OrchestratorError('AGYC_UPSTREAM_FAILED', `${what} is ${supervisor.state}${why}`))
    }
    return new Promise<Completion>((resolve, reject) => {
      let turn: Turn | undefined
      const finish = (error?: OrchestratorError, completion?: Completion): void => {
        if (!inFlight.delete(fail)) return
        clearTimeout(idle)
        req.signal.removeEventListener('abort', onAbort)
        if (error) {
          turn?.cancel()
          reject(error)
        } else resolve(completion!)
      }
      const fail = (error: OrchestratorError): void => finish(error)
      const onAbort = (): void => fail(new OrchestratorError('AGYC_CANCELLED', 'the request was cancelled'))
      const idle = setTimeout(() => fail(new OrchestratorError('AGYC_UPSTREAM_TIMEOUT', `${what} was silent on this request for ${options.idleTimeoutMs} ms`)), options.idleTimeoutMs)
      inFlight.add(fail)
      req.signal.addEventListener('abort', onAbort, { once: true })
      turn = protocol.turn({
        peer: current, prompt, request: req, cwd,
        answer: new Answer(out, what, estimateInputTokens(req.request)),
        touch: () => idle.refresh(),
      })
      turn.done.then(
        (completion) => finish(undefined, completion),
        (err: unknown) => finish(err instanceof OrchestratorError ? err : new OrchestratorError('AGYC_UPSTREAM_FAILED', `${what}: ${(err as Error)?.message ?? String(err)}`)),
      )
    })
  }

  return {
    async start() {
      // the state directory is created and checked (no link followed) before anything is written into it
      const launcher = createLauncher(context, options.spec)
      options.prepare()
      cwd = options.spec.workDir ? `${launcher.stateDir}/${options.spec.workDir}` : launcher.stateDir
      supervisor = new Supervisor(context, launcher, options.spec.args, options.restart, { ready, exited }, what)
      await supervisor.start()
    },
    run,
    async stop() {
      await supervisor?.stop()
      exited('the account is stopping')
    },
    reset() {
      supervisor?.reset()
    },
    get child() {
      return supervisor?.info
    },
  }
}
