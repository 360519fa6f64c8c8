/**
 * The tool bridge's directory on the main thread: which account holds the live CLI that waits on a `tool_use_id`. A
 * request whose last user turn carries `tool_result` blocks for such ids continues there, ahead of affinity and
 * strategy; an id not here (unknown, expired, its worker gone) is served fresh. Entries leave when the continuation
 * comes, when the worker says the call ended (`unparked`) or when the account's worker ends. Bounded: a client cannot
 * grow it, only accounts' parked calls do, and those are bounded by their slots.
 */

/** A continuation's ids, from the last user turn of a Messages request (its `tool_result` blocks). */
export function toolResultIds(request: { messages?: readonly { role?: unknown; content?: unknown }[] }): string[] {
  const messages = request.messages
  if (!messages || messages.length === 0) return []
  const last = messages[messages.length - 1]
  if (last?.role !== 'user' || !Array.isArray(last.content)) return []
  const ids: string[] = []
  for (const block of last.content as { type?: unknown; tool_use_id?: unknown }[]) {
    if (block?.type === 'tool_result' && typeof block.tool_use_id === 'string') ids.push(block.tool_use_id)
  }
  return ids
}

/** the most ids held at once, whatever happens: far above what the accounts' slots can park */
const MAX_ENTRIES = 100_000

export class ToolCallDirectory<A> {
  readonly #byId = new Map<string, A>()
  /** a fleet (`cluster`): told of ids parked (with their account) and gone (`undefined`), for the shared directory */
  onChange: ((ids: readonly string[], account: A | undefined) => void) | undefined

  get size(): number { return this.#byId.size }

  /** the account a continuation of `ids` goes to: the one holding all of them, else none (served fresh) */
  holder(ids: readonly string[]): A | undefined {
    if (ids.length === 0) return undefined
    const first = this.#byId.get(ids[0])
    if (first === undefined) return undefined
    for (let i = 1; i < ids.length; i++) if (this.#byId.get(ids[i]) !== first) return undefined
    return first
  }

  park(ids: readonly string[], account: A): void {
    for (const id of ids) {
      if (this.#byId.size >= MAX_ENTRIES) this.#byId.delete(this.#byId.keys().next().value as string)
      this.#byId.set(id, account)
    }
    this.onChange?.(ids, account)
  }

  /** the ids left the directory (continued, ended); returns how many were here */
  release(ids: readonly string[]): number {
    let n = 0
    for (const id of ids) if (this.#byId.delete(id)) n++
    if (n > 0) this.onChange?.(ids, undefined)
    return n
  }

  /** an account's worker ended: none of its calls can continue */
  forget(account: A): string[] {
    const gone: string[] = []
    for (const [id, holder] of this.#byId) if (holder === account) gone.push(id)
    for (const id of gone) this.#byId.delete(id)
    if (gone.length > 0) this.onChange?.(gone, undefined)
    return gone
  }

  idsOf(account: A): string[] {
    const ids: string[] = []
    for (const [id, holder] of this.#byId) if (holder === account) ids.push(id)
    return ids
  }
}

/**
 * One account's parked conversations: the tool_use ids its CLIs wait on, each with its conversation (the first id of
 * its answer). A parked conversation holds one slot of the account until it is continued or ends.
 */
export class ParkedCalls {
  readonly #conversationOf = new Map<string, string>()
  /** calls left per conversation */
  readonly #left = new Map<string, number>()

  get calls(): number { return this.#conversationOf.size }
  get conversations(): number { return this.#left.size }

  park(ids: readonly string[]): void {
    const conversation = ids[0]
    for (const id of ids) this.#conversationOf.set(id, conversation)
    this.#left.set(conversation, ids.length)
  }

  /** Takes the ids out; returns those that were here and how many conversations that ended (slots freed). */
  unpark(ids: readonly string[]): { gone: string[]; freed: number } {
    const gone: string[] = []
    let freed = 0
    for (const id of ids) {
      const conversation = this.#conversationOf.get(id)
      if (conversation === undefined) continue
      this.#conversationOf.delete(id)
      gone.push(id)
      const left = (this.#left.get(conversation) ?? 1) - 1
      if (left > 0) this.#left.set(conversation, left)
      else {
        this.#left.delete(conversation)
        freed++
      }
    }
    return { gone, freed }
  }

  /** everything (the worker is gone): the ids that were parked */
  clear(): string[] {
    const ids = [...this.#conversationOf.keys()]
    this.#conversationOf.clear()
    this.#left.clear()
    return ids
  }
}
