/**
 * A worker handed a large body is busy parsing it for a while: its `JSON.parse` is one synchronous call that holds the
 * worker's event loop, so the account's other requests, and its heartbeats, wait behind it. For that while the account
 * is not offered to strategies when another can take the work (an account that is the only choice still gets it), and
 * the watchdog allows it heartbeats late rather than replacing a worker that is only parsing. The while is estimated
 * from the size at a rate for the slowest bodies to parse, those of many small blocks (docs/performance.md, "Figures
 * behind the code"), so no message has to say when the parse ended.
 */

/** bodies from this size on open a window (below it the parse takes under ~3 ms) */
export const PARSE_WINDOW_CHARS = 256 * 1024
/**
 * characters a worker gets through per millisecond of a body of many small text blocks: decoding, parsing, reading it
 * for the answer, and giving the heap back after (src/loader/heap-release.ts), with room for a loaded machine
 */
const CHARS_PER_MS = 50_000
/** how much longer than the estimate a parse may run before missed heartbeats count again */
const HEARTBEAT_ALLOWANCE = 8

export class ParseWindow {
  /** until when the worker is likely busy parsing (0: not) */
  #busyUntil = 0
  /** until when missed heartbeats are put down to parsing */
  graceUntil = 0

  /** The worker was handed a body of `chars` characters just now. */
  opened(chars: number): void {
    if (chars < PARSE_WINDOW_CHARS) return
    const now = Date.now()
    const ms = chars / CHARS_PER_MS
    // bodies handed together are parsed one after the other
    this.#busyUntil = Math.max(this.#busyUntil, now) + ms
    this.graceUntil = Math.max(this.graceUntil, this.#busyUntil + HEARTBEAT_ALLOWANCE * ms)
  }

  /** Whether the worker is likely still parsing; the clock is read only while a window is open. */
  get busy(): boolean {
    if (this.#busyUntil === 0) return false
    if (Date.now() < this.#busyUntil) return true
    this.#busyUntil = 0
    return false
  }
}
