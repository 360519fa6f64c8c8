/**
 * Claude Code bridge processes started ahead (the preset's `prewarm`, for bridged conversations; docs/agent-clis.md).
 * A bridged conversation is a process of its own (claude-tools.ts), and a cold `claude` takes ~0.6 s (seconds on a
 * loaded machine) to boot before it answers anything. A process spawned ahead with the bridge's arguments boots while
 * nobody waits, blocked on its stdin; the next conversation takes it and only then sends `initialize`.
 *
 * Only the spawn can be done ahead, checked against Claude Code 2.1.197 (docs/notes/tool-bridge-claude.md, "Started
 * ahead"): the client's system prompt goes in `initialize` and a second `initialize` does not change it; tools could
 * come later (`mcp_set_servers` after an `initialize` without our server works), but the CLI connects its MCP servers
 * and builds its first turn only once the user message comes, so an `initialize` done ahead gained nothing measurable.
 *
 * The same idea as `exec`'s warm children (exec.ts), for the bridge's own arguments. A process taken is replaced once
 * its conversation's `initialize` was answered (`keepWarm` again): a replacement booting at the same moment (~0.7 s of CPU)
 * would slow the very conversation it is for.
 */
import type { Child } from '../process/child.ts'

/** at most this many processes started ahead, whatever `prewarm` says: each is ~150 MB resident while it waits */
export const MAX_BRIDGE_PREWARM = 4

/** a warm process that died while waiting is replaced after this long, so a CLI that cannot start does not spin */
const WARM_RETRY_MS = 1_000

export class WarmProcesses {
  readonly #size: number
  readonly #spawn: () => Child
  readonly #died: (child: Child) => void
  readonly #warm: Child[] = []
  #keeping = false
  #stopped = false
  #retry: NodeJS.Timeout | undefined

  /** `died`: a warm process exited before anyone took it (for a log line) */
  constructor(size: number, spawn: () => Child, died: (child: Child) => void) {
    this.#size = Math.min(size, MAX_BRIDGE_PREWARM)
    this.#spawn = spawn
    this.#died = died
  }

  /** processes waiting now (for tests and logs) */
  get waiting(): number {
    return this.#warm.length
  }

  /** From now on keep `size` processes started ahead; starts what is missing now. */
  keepWarm(): void {
    this.#keeping = true
    this.#refill()
  }

  /** A warm process if one waits and is alive; the caller calls `keepWarm` again when it is a good moment to replace it. */
  take(): Child | undefined {
    for (let child = this.#warm.shift(); child; child = this.#warm.shift()) {
      if (!child.exited) return child
    }
    return undefined
  }

  #refill(): void {
    while (this.#keeping && !this.#stopped && this.#warm.length < this.#size) {
      const child = this.#spawn()
      this.#warm.push(child)
      void child.closed.then(() => {
        const i = this.#warm.indexOf(child)
        if (i < 0) return // taken, or stopped
        this.#warm.splice(i, 1)
        if (this.#stopped) return
        this.#died(child)
        this.#retry ??= setTimeout(() => {
          this.#retry = undefined
          this.#refill()
        }, WARM_RETRY_MS)
      })
    }
  }

  /** Kills every process still waiting; starts nothing more. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#retry)
    const warm = this.#warm.splice(0)
    await Promise.all(warm.map((child) => child.kill()))
  }
}
