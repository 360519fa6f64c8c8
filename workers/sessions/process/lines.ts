/**
 * A child's stdout as lines: the line protocols of the stdio kind, the exec kind's events and the agent CLIs'
 * JSON lines. A line is bounded, so a child that never ends one cannot grow memory.
 */
/**
 * Reads a child's stdout as protocol lines: each complete line goes to `onLine`; a line over `limit` bytes goes to
 * `onBroken` once (the child broke the protocol) and nothing more is read from it.
 */
export function readLines(stdout: NodeJS.ReadableStream, limit: number, onLine: (line: string) => void, onBroken: (why: string) => void): void {
  const lines = new LineSplitter(limit)
  stdout.setEncoding('utf8')
  stdout.on('data', (text: string) => {
    let complete: string[]
    try {
      complete = lines.push(text)
    } catch (err) {
      onBroken((err as Error).message)
      return
    }
    for (const line of complete) onLine(line)
  })
}

export class LineSplitter {
  #buffer = ''
  readonly #limit: number
  constructor(limit: number) { this.#limit = limit }

  /** the complete lines in `text`, keeping the unfinished rest; throws when the rest grows past the limit */
  push(text: string): string[] {
    // only the new text is searched: a long line arriving in many pieces stays linear
    if (!text.includes('\n')) {
      this.#buffer += text
      if (this.#buffer.length > this.#limit) throw new Error(`a line longer than ${this.#limit} characters`)
      return []
    }
    const lines = (this.#buffer + text).split('\n')
    this.#buffer = lines.pop() ?? ''
    if (this.#buffer.length > this.#limit) throw new Error(`a line longer than ${this.#limit} characters`)
    return lines
  }

  /** what is left when the stream ends (a last line without its newline) */
  rest(): string {
    const rest = this.#buffer
    this.#buffer = ''
    return rest
  }
}
