/**
 * The account's one long-lived CLI (`codex app-server`, `gemini --acp`), shared by the agent-mode requests and the
 * bridged conversations: one process, not two (Gemini CLI is ~200 MB resident). The agent-mode session owns the child
 * (its supervisor, handshake, restarts: agent/agent-server.ts) and says when a handshaken peer is up and when it is
 * gone; the protocol module routes what the CLI says about a bridged thread or session (by its id) to the bridge that
 * listens there, and everything else to the agent-mode turns as before.
 */
import type { JsonRpcPeer } from '../agent/json-rpc.ts'

export interface SharedListener {
  /** the CLI went away: nothing more will come */
  closed(reason: string): void
}

/** What a bridge holds for its whole life: the peer of one incarnation of the CLI, and where to listen on it. */
export interface CliHost<L extends SharedListener> {
  readonly peer: JsonRpcPeer
  /** routes the CLI's traffic about `id` to `listener` until the returned function is called */
  listen(id: string, listener: L): () => void
}

export class SharedCli<L extends SharedListener> {
  readonly #listeners = new Map<string, L>()
  #peer: JsonRpcPeer | undefined
  #down = 'the CLI is starting'

  /** the CLI answered its handshake: bridges may use this peer */
  up(peer: JsonRpcPeer): void {
    this.#peer = peer
  }

  /** the CLI is gone (exited, restarting, stopped): every bridge on it ends */
  down(reason: string): void {
    this.#peer = undefined
    this.#down = reason
    const listeners = [...this.#listeners.values()]
    this.#listeners.clear()
    for (const listener of listeners) listener.closed(reason)
  }

  /** the bridge listening on a thread or session id, if any (for the protocol module's routing) */
  listener(id: unknown): L | undefined {
    return typeof id === 'string' ? this.#listeners.get(id) : undefined
  }

  /** the CLI as it is now, or why there is none */
  host(): CliHost<L> | string {
    const peer = this.#peer
    if (!peer) return this.#down
    return {
      peer,
      listen: (id, listener) => {
        if (this.#peer !== peer) {
          // that incarnation is gone already; told later, never from inside the bridge's constructor
          const reason = this.#down
          queueMicrotask(() => listener.closed(reason))
          return () => {}
        }
        this.#listeners.set(id, listener)
        return () => { if (this.#listeners.get(id) === listener) this.#listeners.delete(id) }
      },
    }
  }
}
