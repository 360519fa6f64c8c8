/**
 * Admission: every front door hands its checked request here, in the Anthropic shape, and gets a job back (or the
 * error to answer at once). This is where a request's route is decided, once for all doors: the strategy (the
 * client's hint or alias, else the configured one), stickiness and the affinity key, the `max_tokens` default, and
 * the accounts that may serve its model. The dispatcher then places the job.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { strategyAliases } from '../config/schema.ts'
import { OrchestratorError } from '../errors.ts'
import type { MessagesRequest } from '../protocol/anthropic.ts'
import type { RequestBody } from '../protocol/run-request.ts'
import type { Strategy } from '../strategies/types.ts'
import { affinityKey, type AffinityKey } from './affinity.ts'
import type { Dispatcher } from './dispatcher.ts'
import { Job, type JobSink } from './job.ts'
import { toolResultIds } from './tool-calls.ts'

/** What admission reads of a checked request (src/api/request-schema.ts checks it; other doors translate into it). */
export type AdmittedRequest = MessagesRequest & {
  readonly model: string
  readonly stream?: boolean | undefined
  readonly max_tokens?: number | undefined
  readonly metadata?: { readonly routing?: { readonly strategyHint?: string | undefined; readonly sticky?: boolean | undefined } | undefined } | undefined
}

/** A request as a front door hands it over. */
export interface Admission {
  readonly requestId: string
  readonly receivedAt: number
  /** the checked request, in the Anthropic shape (other doors translate first) */
  readonly request: AdmittedRequest
  /** that request as JSON (text, or a large body's shared bytes), which the worker parses (the client's own bytes when it spoke Anthropic) */
  readonly body: RequestBody
  /** the client's headers: its session id for affinity, `anthropic-beta` / `anthropic-version` for upstreams */
  readonly headers: IncomingHttpHeaders
  /** the affinity key, when the door computed it already (a large body is only summarized on the main thread) */
  readonly affinity?: AffinityKey | undefined
  /** the tool_use ids of the last user turn's tool_result blocks, when the door computed them already (same reason) */
  readonly continues?: readonly string[] | undefined
  /** the client's wire format, when not Anthropic's (the worker frames the answer in it) */
  readonly format?: string | undefined
  readonly includeUsage?: boolean | undefined
}

/** Decides the job's route and hands it to the dispatcher; throws what to answer at once (400, 404, 529, 503). */
export function admit(dispatcher: Dispatcher, admission: Admission, sink: JobSink): Job {
  const { request, headers } = admission
  const routing = request.metadata?.routing
  const hint = routing?.strategyHint
  // `sticky` as a hint turns affinity on for this request with the default strategy behind it
  const strategy = hint === 'sticky' ? dispatcher.strategy() : strategyFor(dispatcher, hint)
  // a continuation goes to the account whose CLI waits on its tool calls, ahead of affinity and strategy
  const continues = admission.continues ?? toolResultIds(request)
  const continuesOn = continues.length > 0 ? dispatcher.toolCalls.holder(continues) : undefined
  const job = new Job({
    requestId: admission.requestId,
    body: admission.body,
    model: request.model,
    stream: request.stream === true,
    maxTokens: request.max_tokens ?? dispatcher.config.defaultMaxTokens,
    anthropicBeta: headerValue(headers['anthropic-beta']),
    anthropicVersion: headerValue(headers['anthropic-version']),
    format: admission.format,
    includeUsage: admission.includeUsage,
  }, {
    strategy,
    affinity: conversationKey(dispatcher, admission),
    candidates: dispatcher.candidatesFor(request.model),
    continues, continuesOn,
  }, sink, admission.receivedAt)
  dispatcher.submit(job)
  sink.accepted(job)
  return job
}

/**
 * The request's conversation key when it is sticky (else `undefined`): the dispatcher's affinity table and a fleet's
 * affinity directory (src/cluster/route.ts) key on the same value.
 */
export function conversationKey(dispatcher: Dispatcher, admission: Admission): AffinityKey | undefined {
  const routing = admission.request.metadata?.routing
  // dispatcher.config, not the start-up config: a reload may have changed these
  const sticky = routing?.sticky ?? (routing?.strategyHint === 'sticky' || dispatcher.config.affinity.enabled)
  return sticky ? admission.affinity ?? affinityKey(admission.headers, admission.request) : undefined
}

function strategyFor(dispatcher: Dispatcher, hint: string | undefined): Strategy {
  if (hint === undefined) return dispatcher.strategy()
  const name = strategyAliases[hint]
  if (!name) {
    throw new OrchestratorError('AGYC_INVALID_REQUEST',
      `metadata.routing.strategyHint: unknown strategy "${hint}" (expected sticky or one of ${Object.keys(strategyAliases).join(', ')})`)
  }
  return dispatcher.strategy(name)
}

const headerValue = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value.join(',') : value)
