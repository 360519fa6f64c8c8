/**
 * Every name the fleet writes in Redis, in one place (issue 17). `<p>` is `cluster.keyPrefix` (default `agyc:`).
 * Everything a node writes carries a TTL, so a node killed with SIGKILL leaves nothing that outlives it for long.
 *
 *   <p>node:<nodeId>              string  JSON membership record                      PX nodeTtlMs, rewritten each heartbeat
 *   <p>nodes                      zset    nodeId → server-clock expiry (ms)           listing without SCAN; pruned on read
 *   <p>quota:<scope>:<window>:r   hash    bucket index → requests reserved            PEXPIRE window + one bucket
 *   <p>quota:<scope>:<window>:t   hash    bucket index → tokens reserved / used       PEXPIRE window + one bucket
 *   <p>cool:<credential>          string  JSON { kind, reason, by }                   PX = retry-after / ejection time
 *   <p>affinity:<conversation>    string  JSON { nodeId, accountId }                  PX affinityTtlMs, renewed on use
 *   <p>tool:<tool_use_id>         string  JSON { nodeId, accountId }                  PX toolCallTtlMs
 *
 * A scope is `account:<accountId>` or `cred:<credentialId>`. A credential is never named by its key: its id is an
 * HMAC of the key under the cluster secret, so Redis (and whoever reads it) learns nothing about the key, and two nodes
 * configured with the same key, which share the secret, compute the same id.
 */
import { createHmac } from 'node:crypto'

export const scopes = {
  account: (accountId: string): string => `account:${accountId}`,
  credential: (credentialId: string): string => `cred:${credentialId}`,
}

/** The credential id of an API key or token: 32 hex characters, the same on every node of the fleet. */
export function credentialId(apiKey: string, clusterSecret: string): string {
  return createHmac('sha256', clusterSecret).update('agyc credential\0').update(apiKey).digest('hex').slice(0, 32)
}

export const keys = {
  node: (p: string, nodeId: string): string => `${p}node:${nodeId}`,
  nodes: (p: string): string => `${p}nodes`,
  quota: (p: string, scope: string, window: string, what: 'r' | 't'): string => `${p}quota:${scope}:${window}:${what}`,
  cooldown: (p: string, credential: string): string => `${p}cool:${credential}`,
  affinity: (p: string, conversation: string): string => `${p}affinity:${conversation}`,
  toolCall: (p: string, toolUseId: string): string => `${p}tool:${toolUseId}`,
}
