/**
 * Node-to-node authentication for forwarded requests (issue 17): the forwarding node signs the method, the path, a
 * timestamp and its own node id with the cluster secret (HMAC-SHA256); the receiving node recomputes and compares in
 * constant time, and refuses a timestamp further than `maxClockSkewMs` from its own clock, so a captured request
 * cannot be replayed later. A request that verifies is a forwarded one: the receiver serves it locally and never
 * forwards it again. The body is not signed: it travels on the same connection as the signature, and signing it
 * would mean reading it whole before streaming it on.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'

export const clusterHeaders = {
  node: 'x-agyc-cluster-node',
  timestamp: 'x-agyc-cluster-timestamp',
  signature: 'x-agyc-cluster-signature',
} as const

export interface SignedRequest { method: string; path: string }

export type Verified =
  | { ok: true; nodeId: string }
  | { ok: false; reason: 'missing' | 'stale' | 'bad-signature' }

function mac(secret: string, request: SignedRequest, timestamp: string, nodeId: string): Buffer {
  // one field per line, none of which may contain a newline (a method, a path, digits, a node id), so no two
  // different requests sign the same text
  return createHmac('sha256', secret)
    .update(`agyc-forward\n${request.method.toUpperCase()}\n${request.path}\n${timestamp}\n${nodeId}`)
    .digest()
}

/**
 * The headers that make a request from `nodeId` acceptable to the other nodes.
 * @example
 * fetch(peer.advertiseUrl + '/v1/messages', { method: 'POST', headers: { ...signRequest(secret, 'n1', { method: 'POST', path: '/v1/messages' }), … } })
 */
export function signRequest(secret: string, nodeId: string, request: SignedRequest, now: number = Date.now()): Record<string, string> {
  const timestamp = String(Math.floor(now))
  return {
    [clusterHeaders.node]: nodeId,
    [clusterHeaders.timestamp]: timestamp,
    [clusterHeaders.signature]: mac(secret, request, timestamp, nodeId).toString('base64url'),
  }
}

/**
 * Checks a request's cluster headers. `header` reads one request header by lower-case name (Hono's `c.req.header`,
 * `Headers.get`, or `(n) => req.headers[n]`).
 */
export function verifyRequest(
  secret: string,
  request: SignedRequest,
  header: (name: string) => string | string[] | null | undefined,
  options: { maxClockSkewMs: number; now?: number },
): Verified {
  const one = (name: string): string | undefined => {
    const v = header(name)
    return typeof v === 'string' && v !== '' ? v : undefined
  }
  const nodeId = one(clusterHeaders.node)
  const timestamp = one(clusterHeaders.timestamp)
  const signature = one(clusterHeaders.signature)
  if (nodeId === undefined || timestamp === undefined || signature === undefined) return { ok: false, reason: 'missing' }
  const now = options.now ?? Date.now()
  if (!/^\d{1,15}$/.test(timestamp) || Math.abs(now - Number(timestamp)) > options.maxClockSkewMs) return { ok: false, reason: 'stale' }
  if (/[\r\n]/.test(nodeId)) return { ok: false, reason: 'bad-signature' }
  const expected = mac(secret, request, timestamp, nodeId)
  const given = Buffer.from(signature, 'base64url')
  // the length is no secret (always 32 bytes); timingSafeEqual needs equal lengths
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad-signature' }
  return { ok: true, nodeId }
}
