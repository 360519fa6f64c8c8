/**
 * What a fleet adds to one account (issue 17; src/cluster/accounts.ts implements it). Without `cluster` in the config
 * no account has one and every hook below is a single `undefined` check: the embedded default pays nothing.
 */
import type { AccountConfig } from '../config/schema.ts'
import type { Job } from './job.ts'

export interface SharedAccount {
  /** the fleet-wide id of the credential the account spends (src/cluster/keys.ts), when it has one */
  readonly credential: string | undefined
  /**
   * The fleet's budget for this request, before it is sent to the worker. `undefined`: nothing to reserve (no quota),
   * send now. Else resolves 0 (reserved, or Redis did not answer: fail-open, the local quota alone applies) or the ms
   * until the budget has room (the account is then out of quota until then, and the job placed again).
   */
  reserve(job: Job): Promise<number> | undefined
  /** the job left the account: `tokens` used (0 for a failure or a cancel after sending), or `undefined`: it never ran */
  end(job: Job, tokens: number | undefined): void
  /** the upstream throttled the account (429/529) or it was ejected: its credential cools on every node for `ms` */
  publish(kind: 'cooldown' | 'ejected', ms: number, reason: string): void
}

/** Builds the shared half of an account, or `undefined` when it shares nothing. */
export type SharedAccountFactory = (account: { readonly id: string; readonly config: AccountConfig }) => SharedAccount | undefined
