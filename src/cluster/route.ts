/**
 * Any node takes any request (issue 17): before admission, a front door asks the router whether the request belongs
 * elsewhere in the fleet. In order:
 * 1. It claims to come from another node (the cluster headers): verified, it is served here and never forwarded again;
 *    not verified, it is refused (401 without a complete signature, 403 with a wrong or stale one).
 * 2. It continues a tool call (its last user turn carries `tool_result` blocks) whose pending call the tool-call
 *    directory places on another live node: forwarded there, where the session waiting for the result lives.
 * 3. It continues a conversation (sticky, and a follow-up turn or a named session) whose home the affinity directory
 *    places on another live node: forwarded there, where its prompt cache lives.
 * 4. No local account has a free slot now and another node has one: forwarded to the node with the most free
 *    capacity (the case that would otherwise queue here, or answer 529).
 * Otherwise it is served here. A directory entry naming a node that is not in the membership list (killed, gone) is
 * ignored; the local placement then overwrites it (AffinityTable.onServed, node.ts), so the conversation re-homes on
 * its next turn. Redis unreachable: every lookup answers UNKNOWN at once and the request is served here (fail-open).
 * A peer that refuses the connection (it died since the last heartbeat) gets nothing: the request is served here.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import { OrchestratorError } from '../errors.ts'
import { sendError, type ErrorShape } from '../api/answer.ts'
import { conversationKey, type Admission } from '../dispatch/admission.ts'
import type { Dispatcher } from '../dispatch/dispatcher.ts'
import { toolResultIds } from '../dispatch/tool-calls.ts'
import { clusterHeaders } from './auth.ts'
import type { Fleet } from './fleet.ts'
import type { Forwarder, HopResult } from './forward.ts'
import type { NodeView } from './membership.ts'
import { UNKNOWN } from './store.ts'
import type { Placement } from './directory.ts'
import type { RequestBody } from '../protocol/run-request.ts'

export type ForwardReason = 'tool-call' | 'affinity' | 'capacity'

/** What a door says of the request beyond its admission: where the client sent it, its own bytes, its error shape. */
export interface DoorRequest {
  /** the door's path (`/v1/messages`, `/v1/chat/completions`…): a forward goes to the same door on the peer */
  readonly path: string
  /** the body as the client sent it (an OpenAI door's admission carries the translated one) */
  readonly body: RequestBody
  readonly errors: ErrorShape
}

/** The front doors' hook (src/api/messages.ts): true when the request was answered here. */
export interface ClusterRoute {
  take(req: IncomingMessage, res: ServerResponse, admission: Admission, door: DoorRequest): Promise<boolean>
}

/** A peer's answers that mean it did not take the request on: shutting down (503), no account or queue full (529). */
const DECLINED = new Set([503, 529])

/** At most this many tool_result ids are looked up per request: a turn answering many calls names one node anyway. */
const MAX_TOOL_LOOKUPS = 4

export interface RouterStats {
  /** forwarded by this node: reason → outcome → count */
  forwarded: Map<string, number>
  /** served here on another node's behalf */
  received: number
  /** refused: claimed to be forwarded without a valid signature */
  refused: number
}

export class Router implements ClusterRoute {
  readonly #fleet: Fleet
  readonly #dispatcher: Dispatcher
  readonly #forwarder: Forwarder
  readonly #log: Logger
  /** requests sent to each peer since the last heartbeat: its advertised free slots are a heartbeat old */
  readonly #sentSinceBeat = new Map<string, number>()
  readonly stats: RouterStats = { forwarded: new Map(), received: 0, refused: 0 }

  constructor(fleet: Fleet, dispatcher: Dispatcher, forwarder: Forwarder, log: Logger) {
    this.#fleet = fleet
    this.#dispatcher = dispatcher
    this.#forwarder = forwarder
    this.#log = log
  }

  /** A heartbeat brought fresh free counts. */
  onBeat(): void {
    this.#sentSinceBeat.clear()
  }

  async take(req: IncomingMessage, res: ServerResponse, admission: Admission, door: DoorRequest): Promise<boolean> {
    const headers = req.headers
    const path = door.path
    if (headers[clusterHeaders.node] !== undefined || headers[clusterHeaders.signature] !== undefined || headers[clusterHeaders.timestamp] !== undefined) {
      return this.#fromPeer(req, res, admission, door)
    }
    const target = await this.#target(admission)
    if (target === undefined) return false
    // a peer that answers 503 (shutting down) or 529 (no account, queue full) before anything was written took nothing
    // on: the request is served here instead, rather than bounced to the client
    const result = await this.#forwarder.forward({
      req, res, body: door.body, errors: door.errors, requestId: admission.requestId, url: target.node.advertiseUrl, nodeId: target.node.nodeId,
      signed: this.#fleet.sign({ method: 'POST', path }),
      deadline: admission.receivedAt + this.#dispatcher.config.requestTimeoutMs,
      declines: DECLINED,
    })
    this.#count(target.reason, result.outcome)
    if (result.outcome === 'unreachable' || result.outcome === 'declined') {
      this.#log.warn({ reqId: admission.requestId, node: target.node.nodeId, outcome: result.outcome, status: result.status }, 'cluster: peer took nothing, serving here')
      return false
    }
    this.#line(admission, path, target, result)
    return true
  }

  /** A forwarded request: served here if its signature holds, refused otherwise (never forwarded again). */
  #fromPeer(req: IncomingMessage, res: ServerResponse, admission: Admission, door: DoorRequest): boolean {
    const verdict = this.#fleet.verify({ method: req.method ?? 'POST', path: door.path }, (name) => req.headers[name])
    if (verdict.ok) {
      this.stats.received++
      return false
    }
    this.stats.refused++
    const error = verdict.reason === 'missing'
      ? new OrchestratorError('AGYC_UNAUTHORIZED', 'a forwarded request must carry the cluster signature')
      : new OrchestratorError('AGYC_FORBIDDEN', 'the cluster signature of this forwarded request does not verify')
    this.#log.warn({ reqId: admission.requestId, reason: verdict.reason, from: String(req.headers[clusterHeaders.node] ?? '').slice(0, 64),
      remote: req.socket.remoteAddress }, 'cluster: forwarded request refused')
    sendError(res, admission.requestId, error, undefined, door.errors)
    return true
  }

  async #target(admission: Admission): Promise<{ node: NodeView; reason: ForwardReason } | undefined> {
    const live = this.#fleet.membership.nodes()
    // alone in the fleet as of the last heartbeat (or Redis never answered since start): nothing to ask
    if (!live.some((n) => n.nodeId !== this.#fleet.nodeId)) return undefined
    // the door's ids (a large body's summary carries them), else the request's own
    const continues = admission.continues ?? toolResultIds(admission.request)
    for (const id of continues.slice(0, MAX_TOOL_LOOKUPS)) {
      const placement = await this.#fleet.toolCalls.get(id)
      if (placement === UNKNOWN) return undefined
      const node = this.#elsewhere(placement, live)
      if (node !== undefined) return { node, reason: 'tool-call' }
    }
    const key = conversationKey(this.#dispatcher, admission)
    if (key?.follow === true) {
      const placement = await this.#fleet.affinity.get(key.key)
      if (placement === UNKNOWN) return undefined
      if (placement !== undefined) {
        if (placement.nodeId === this.#fleet.nodeId) return undefined // home is here: its account is in the local table
        const node = this.#elsewhere(placement, live)
        if (node !== undefined) return { node, reason: 'affinity' }
      }
    }
    if (this.#roomHere(admission.request.model)) return undefined
    const node = this.#mostFree(live)
    return node === undefined ? undefined : { node, reason: 'capacity' }
  }

  /** The live node the placement names, when it is not this one; a dead node's entry is a miss. */
  #elsewhere(placement: Placement | undefined, live: readonly NodeView[]): NodeView | undefined {
    if (placement === undefined || placement.nodeId === this.#fleet.nodeId) return undefined
    return live.find((n) => n.nodeId === placement.nodeId)
  }

  /** Nothing waits in the global queue and one of the model's accounts has a free slot now. */
  #roomHere(model: string): boolean {
    if (this.#dispatcher.queued > 0) return false
    try {
      // a parked account (lazy workers) counts: its worker starts for the request, which costs less than a hop
      return this.#dispatcher.candidatesFor(model).some((a) => a.routable && a.assigned < a.maxConcurrency)
    } catch {
      return true // a model nobody serves here (strict models): local admission gives the 404
    }
  }

  #mostFree(live: readonly NodeView[]): NodeView | undefined {
    let best: NodeView | undefined
    let bestFree = 0
    for (const node of live) {
      if (node.nodeId === this.#fleet.nodeId) continue
      const free = this.#freeOf(node) - (this.#sentSinceBeat.get(node.nodeId) ?? 0)
      if (free > bestFree) {
        best = node
        bestFree = free
      }
    }
    if (best !== undefined) this.#sentSinceBeat.set(best.nodeId, (this.#sentSinceBeat.get(best.nodeId) ?? 0) + 1)
    return best
  }

  /**
   * A peer's free slots as its last record says, less the accounts whose credential this node knows to be cooling
   * now (a throttle heard since that record was written: the record is up to a heartbeat old, the cooldown is not).
   */
  #freeOf(node: NodeView): number {
    const cooldowns = this.#fleet.cooldowns
    let free = 0
    for (const a of node.accounts) {
      if (a.state !== 'ok' || (a.credential !== undefined && cooldowns.until(a.credential) !== 0)) continue
      free += Math.max(0, a.capacity - a.inFlight)
    }
    return free
  }

  #count(reason: ForwardReason, outcome: string): void {
    const key = `${reason}\0${outcome}`
    this.stats.forwarded.set(key, (this.stats.forwarded.get(key) ?? 0) + 1)
  }

  /** The forwarding node's access line: the serving node writes the request's own. */
  #line(admission: Admission, path: string, target: { node: NodeView; reason: ForwardReason }, result: HopResult): void {
    if (!this.#log.isLevelEnabled('info')) return
    this.#log.info({ reqId: admission.requestId, method: 'POST', path, forwardedTo: target.node.nodeId, reason: target.reason,
      outcome: result.outcome, status: result.status, code: result.code, durationMs: Date.now() - admission.receivedAt }, 'request forwarded')
  }
}
