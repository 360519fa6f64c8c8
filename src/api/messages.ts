/** POST /v1/messages and POST /v1/messages/count_tokens. */
import type { Context } from 'hono'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import { strategyAliases } from '../config/schema.ts'
import { OrchestratorError } from '../errors.ts'
import { Job } from '../dispatch/job.ts'
import { estimateInputTokens } from '../protocol/anthropic.ts'
import type { Strategy } from '../strategies/index.ts'
import { readBody } from './body.ts'
import { Exchange } from './exchange.ts'
import { CountTokensRequest, MessagesRequest, describeIssues } from './request-schema.ts'
import type { AppEnv, AppDeps } from './app.ts'

async function readJson(c: Context<AppEnv>, limit: number): Promise<{ text: string; value: unknown }> {
  const text = await readBody(c.env.incoming, limit)
  try {
    return { text, value: JSON.parse(text) }
  } catch (err) {
    throw new OrchestratorError('AGYC_MALFORMED_JSON', `request body is not valid JSON: ${(err as Error).message}`)
  }
}

export function messagesHandler({ dispatcher, config, log }: AppDeps) {
  const limit = config.server.bodyLimitBytes
  // the access line carries only our own fields, never a secret: path redaction (≈ 9 µs a line, most of the line's
  // cost in the profile, bench/README) is skipped for it
  const accessLog = log.child({}, { redact: { paths: [] } })
  return async function postMessages(c: Context<AppEnv>): Promise<Response> {
    const { text, value } = await readJson(c, limit)
    const parsed = MessagesRequest.safeParse(value)
    if (!parsed.success) throw new OrchestratorError('AGYC_INVALID_REQUEST', describeIssues(parsed.error.issues))
    const request = parsed.data
    const strategy = strategyFor(request.metadata?.routing?.strategyHint, dispatcher.strategy())
    const stream = request.stream === true
    const requestId = c.get('requestId')
    const exchange = new Exchange(c.env.outgoing, requestId, stream, dispatcher, accessLog)
    const job = new Job({
      requestId, body: text, model: request.model, stream, strategy,
      maxTokens: request.max_tokens ?? config.dispatcher.defaultMaxTokens,
      candidates: dispatcher.candidatesFor(request.model), sink: exchange, receivedAt: Date.now(),
    })
    exchange.job = job
    dispatcher.submit(job) // throws the 529/503 to answer at once
    c.env.outgoing.once('close', exchange.onClose)
    return RESPONSE_ALREADY_SENT
  }

  function strategyFor(hint: string | undefined, fallback: Strategy): Strategy {
    if (hint === undefined) return fallback
    const name = strategyAliases[hint]
    if (!name) {
      throw new OrchestratorError('AGYC_INVALID_REQUEST',
        `metadata.routing.strategyHint: unknown strategy "${hint}" (expected one of ${Object.keys(strategyAliases).join(', ')})`)
    }
    return dispatcher.strategy(name)
  }
}

/** Answered locally: an estimate (README, "count_tokens"), never a request to an account. */
export function countTokensHandler({ config }: AppDeps) {
  return async function countTokens(c: Context<AppEnv>): Promise<Response> {
    const { value } = await readJson(c, config.server.bodyLimitBytes)
    const parsed = CountTokensRequest.safeParse(value)
    if (!parsed.success) throw new OrchestratorError('AGYC_INVALID_REQUEST', describeIssues(parsed.error.issues))
    return c.json({ input_tokens: estimateInputTokens(parsed.data) })
  }
}
