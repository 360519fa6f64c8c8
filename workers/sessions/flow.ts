/**
 * Back-pressure from a client that stops reading to what produces its answer: once the request's held output is full
 * (SessionOutput.writable false), the stream the session reads (a child's stdout) is paused until the request drains,
 * so the child blocks on its own writes instead of the worker buffering for it (docs/security.md, "Bounds").
 */
import type { Readable } from 'node:stream'
import type { SessionOutput } from './types.ts'

export function holdIfFull(stream: Readable, out: SessionOutput): void {
  if (out.writable || stream.isPaused()) return
  stream.pause()
  void out.drained().then(() => stream.resume())
}
