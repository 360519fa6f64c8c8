/**
 * A long-lived agent CLI's opening exchange (Codex's `initialize`, ACP's `initialize` and `authenticate`), bounded in
 * time: a CLI that does not answer within `ms`, or answers with an error, is killed with its process group.
 */
import type { Child } from '../process/child.ts'

export async function handshake(child: Child, what: string, ms: number, exchange: () => Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      exchange(),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no handshake within ${ms} ms`)), ms) }),
    ])
  } catch (err) {
    await child.kill()
    throw err
  } finally {
    clearTimeout(timer)
  }
}
