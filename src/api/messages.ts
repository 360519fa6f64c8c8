/** POST /v1/messages and POST /v1/messages/count_tokens. */
import type { Context } from 'hono'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import { strategyAliases } from '../config/schema.ts'
import { OrchestratorError } from '../errors.ts'
import { affinityKey } from '../dispatch/affinity.ts'
import { Job } from '../dispatch/job.ts'
import { estimateInputTokens, type MessagesRequest } from '../protocol/anthropic.ts'
import type { Strategy } from '../strategies/index.ts'
import { accessLineWriter } from './access-line.ts'
import { readBody } from './body.ts'
import { Exchange } from './exchange.ts'
import { CountTokensRequest, MessagesRequest as MessagesRequestSchema, describeIssues, shapeProblem } from './request-schema.ts'
import type { AppEnv, AppDeps } from './app.ts'
import type { ServerConfig } from '../config/schema.ts'

async function readJson(c: Context<AppEnv>, server: ServerConfig): Promise<{ text: string; value: unknown }> {
  const text = await readBody(c.env.incoming, server.bodyLimitBytes, server.bodyIdleTimeoutMs)
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new OrchestratorError('AGYC_MALFORMED_JSON', `request body is not valid JSON: ${(err as Error).message}`)
  }
  const problem = shapeProblem(value, server)
  if (problem) throw new OrchestratorError('AGYC_INVALID_REQUEST', problem)
  return { text, value }
}

export function messagesHandler({ dispatcher, config, log }: AppDeps) {
  // the access line carries only our own fields, never a secret: path redaction (≈ 9 µs a line, most of the line's
  // cost in the profile, bench/README) is skipped for it, and it is serialised by hand (access-line.ts)
  const accessLine = accessLineWriter(log.child({}, { redact: { paths: [] } }))
  return async function postMessages(c: Context<AppEnv>): Promise<Response> {
    const { text, value } = await readJson(c, config.server)
    const parsed = MessagesRequestSchema.safeParse(value)
    if (!parsed.success) throw new OrchestratorError('AGYC_INVALID_REQUEST', describeIssues(parsed.error.issues))
    const request = parsed.data
    const routing = request.metadata?.routing
    const hint = routing?.strategyHint
    // `sticky` as a hint turns affinity on for this request with the default strategy behind it
    const strategy = hint === 'sticky' ? dispatcher.strategy() : strategyFor(hint, dispatcher.strategy())
    // dispatcher.config, not config.dispatcher: a reload may have changed these
    const sticky = routing?.sticky ?? (hint === 'sticky' || dispatcher.config.affinity.enabled)
    const stream = request.stream === true
    const requestId = c.get('requestId')
    const exchange = new Exchange(c.env.outgoing, requestId, stream, dispatcher, accessLine)
    const job = new Job({
      requestId, body: text, model: request.model, stream, strategy,
      affinity: sticky ? affinityKey(c.env.incoming.headers, request as MessagesRequest) : undefined,
      anthropicBeta: c.env.incoming.headers['anthropic-beta'] as string | undefined,
      anthropicVersion: c.env.incoming.headers['anthropic-version'] as string | undefined,
      maxTokens: request.max_tokens ?? dispatcher.config.defaultMaxTokens,
      candidates: dispatcher.candidatesFor(request.model), sink: exchange, receivedAt: Date.now(),
    })
    exchange.job = job
    dispatcher.submit(job) // throws the 529/503 to answer at once
    exchange.open()
    c.env.outgoing.once('close', exchange.onClose)
    return RESPONSE_ALREADY_SENT
  }

  function strategyFor(hint: string | undefined, fallback: Strategy): Strategy {
    if (hint === undefined) return fallback
    const name = strategyAliases[hint]
    if (!name) {
      throw new OrchestratorError('AGYC_INVALID_REQUEST',
        `metadata.routing.strategyHint: unknown strategy "${hint}" (expected sticky or one of ${Object.keys(strategyAliases).join(', ')})`)
    }
    return dispatcher.strategy(name)
  }
}

/** Answered locally: an estimate (README, "count_tokens"), never a request to an account. */
export function countTokensHandler({ config }: AppDeps) {
  return async function countTokens(c: Context<AppEnv>): Promise<Response> {
    const { value } = await readJson(c, config.server)
    const parsed = CountTokensRequest.safeParse(value)
    if (!parsed.success) throw new OrchestratorError('AGYC_INVALID_REQUEST', describeIssues(parsed.error.issues))
    return c.json({ input_tokens: estimateInputTokens(parsed.data) })
  }
}
