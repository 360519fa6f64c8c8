/**
 * The built-in `mock` session: runs inside the worker, no child process. Deterministic text, configurable latency
 * and chunking; it is what config.example.json and the benchmark use. With `directives: true` (tests only) a prompt
 * can make it sleep, fail with a code, crash the worker or hang its event loop.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { isCode, OrchestratorError } from '../../src/errors.ts'
import { estimateInputTokens, estimateTokens, lastUserText } from '../../src/protocol/anthropic.ts'
import type { Completion, Session, SessionContext, SessionOutput, SessionRequest } from './types.ts'

type MockConfig = Extract<SessionContext['account']['session'], { kind: 'mock' }>

/** `[[mock:VERB ARG… @account]]`; without `@account` a directive applies on every account */
const DIRECTIVE = /\[\[mock:(sleep|fail|midfail|crash|hang|block)((?: [A-Za-z0-9_.]+)*)(?: @([A-Za-z0-9._-]+))?\]\]/g

/** Splits `text` into `n` pieces of near-equal length (fewer when the text is shorter). */
export function cut(text: string, n: number): string[] {
  const size = Math.max(1, Math.ceil(text.length / n))
  const pieces: string[] = []
  for (let i = 0; i < text.length; i += size) pieces.push(text.slice(i, i + size))
  return pieces.length > 0 ? pieces : ['']
}

export function createMockSession({ account }: SessionContext): Session {
  const config = account.session as MockConfig
  return {
    async start() {},
    async stop() {},
    async run(req: SessionRequest, out: SessionOutput): Promise<Completion> {
      const prompt = lastUserText(req.request)
      const midfail = config.directives ? await obey(prompt, account.id, req.signal) : false
      if (config.latencyMs > 0) await sleep(config.latencyMs, undefined, { signal: req.signal })
      // a function replacer: a string one would read `$&`, `$'`… in the client's prompt as substitution patterns
      const text = config.text.replaceAll('{account}', () => account.id).replaceAll('{model}', () => req.model).replaceAll('{prompt}', () => prompt)
      if (req.stream) {
        for (const piece of cut(text, config.deltas)) {
          if (config.deltaDelayMs > 0) await sleep(config.deltaDelayMs, undefined, { signal: req.signal })
          if (!out.text(piece)) await out.drained() // the client is not reading: wait, as a model's stream would
          if (midfail) throw new OrchestratorError('AGYC_UPSTREAM_FAILED', 'mock failure in mid-stream')
        }
      }
      return {
        content: [{ type: 'text', text }],
        stopReason: 'end_turn',
        usage: { input_tokens: estimateInputTokens(req.request), output_tokens: estimateTokens(text) },
      }
    },
  }
}

/** Carries out the prompt's directives for this account, in order; returns whether to fail after the first delta. */
async function obey(prompt: string, accountId: string, signal: AbortSignal): Promise<boolean> {
  let midfail = false
  for (const [, verb, rawArgs, scope] of prompt.matchAll(DIRECTIVE)) {
    if (scope !== undefined && scope !== accountId) continue
    const [arg, arg2] = rawArgs.trim().split(' ')
    switch (verb) {
      case 'sleep':
        await sleep(Number(arg || 1000), undefined, { signal })
        break
      case 'fail': // [[mock:fail CODE RETRY_AFTER_S]]
        throw new OrchestratorError(isCode(arg) ? arg : 'AGYC_UPSTREAM_FAILED', `mock failure ${arg ?? ''}`.trim(),
          { retryAfterS: arg2 ? Number(arg2) : undefined })
      case 'midfail':
        midfail = true
        break
      case 'crash':
        // an uncaught exception ends this worker thread only; the main thread sees the attach task reject
        setImmediate(() => { throw new Error('mock crash') })
        await sleep(60_000, undefined, { signal })
        break
      case 'hang':
        for (;;) { /* a busy loop: heartbeats stop, only terminate() ends it */ }
      case 'block':
        // a blocked event loop that burns no CPU (a stuck synchronous call): heartbeats stop all the same
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000)
        break
    }
  }
  return midfail
}
