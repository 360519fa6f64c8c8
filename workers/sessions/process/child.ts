/**
 * Child processes as every session kind spawns them: an argv (never a shell), the account's state directory as cwd,
 * an allowlisted environment, its own process group, its PID reported to the main thread at once (a child outlives the
 * worker thread that spawned it: docs/session-kinds.md, "Process hygiene"), and stopped by group: SIGTERM, then SIGKILL.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { dirname } from 'node:path'
import { OrchestratorError } from '../../../src/errors.ts'
import { ensureStateDir, privateDir } from '../../../src/config/state-dir.ts'
import { childEnvironment, resolveEnvValue, type EnvValue } from '../../../src/config/child-env.ts'
import { LineSplitter } from './lines.ts'
import type { SessionContext } from '../types.ts'



export interface ChildSpec {
  command: string
  args: readonly string[]
  env: Readonly<Record<string, EnvValue>>
  killGraceMs: number
  /** a folder inside the state directory to run in (created), instead of the state directory itself */
  workDir?: string
}

/** Resolved once per account: cwd, environment and the account's identity for every child it spawns. */
export interface Launcher {
  readonly stateDir: string
  readonly tmpDir: string
  spawn(args: readonly string[], what: string): Child
}

export function createLauncher(context: SessionContext, spec: ChildSpec): Launcher {
  const { account } = context
  const { stateDir, tmpDir } = ensureStateDir(account.stateDir, account.confinedTo)
  const env = childEnvironment(account.id, stateDir, tmpDir, spec.env)
  const command = spec.command === 'node' ? process.execPath : spec.command
  const cwd = spec.workDir ? privateDir(stateDir, spec.workDir) : stateDir
  return {
    stateDir,
    tmpDir,
    spawn(args, what) {
      return new Child(context, spawn(command, [...args], { cwd, env, detached: true, stdio: 'pipe' }), what, spec.killGraceMs)
    },
  }
}

/** The last `limit` characters of a stream: what an error message carries from a child's stderr. */
export class Tail {
  #text = ''
  readonly #limit: number
  constructor(limit = 2_000) { this.#limit = limit }
  push(text: string): void {
    this.#text = (this.#text + text).slice(-this.#limit)
  }
  toString(): string { return this.#text.trim() }
}

export class Child {
  readonly proc: ChildProcessWithoutNullStreams
  readonly pid: number | undefined
  readonly what: string
  readonly stderr = new Tail()
  /** settles when the process exited and its pipes closed: everything it wrote has been read */
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** the spawn itself failed (ENOENT, EACCES…) */
  spawnError: Error | undefined
  exited = false
  readonly #context: SessionContext
  readonly #killGraceMs: number
  #killTimer: NodeJS.Timeout | undefined

  constructor(context: SessionContext, proc: ChildProcessWithoutNullStreams, what: string, killGraceMs: number) {
    this.#context = context
    this.#killGraceMs = killGraceMs
    this.proc = proc
    this.pid = proc.pid
    this.what = what
    if (this.pid !== undefined) context.emit({ kind: 'child', pid: this.pid, alive: true })
    // a child that dies before reading its input would otherwise raise EPIPE as an uncaught error in the worker
    proc.stdin.on('error', () => {})
    proc.stderr.setEncoding('utf8')
    proc.stderr.on('data', (text: string) => this.stderr.push(text))
    proc.on('exit', () => {
      this.exited = true
      clearTimeout(this.#killTimer)
      // the leader is gone; anything it left in its group goes too (no child survives its request)
      this.#signalGroup('SIGKILL')
      if (this.pid !== undefined) this.#context.emit({ kind: 'child', pid: this.pid, alive: false })
    })
    this.closed = new Promise((resolve) => {
      proc.on('error', (err) => {
        this.spawnError ??= err
        if (this.pid === undefined) resolve({ code: null, signal: null })
      })
      proc.on('close', (code, signal) => resolve({ code, signal }))
    })
  }

  /** SIGTERM to the whole group, SIGKILL after the grace period; resolves once the child is gone. */
  kill(): Promise<void> {
    if (!this.exited && this.pid !== undefined && this.#killTimer === undefined) {
      this.proc.stdin.destroy()
      this.#signalGroup('SIGTERM')
      this.#killTimer = setTimeout(() => this.#signalGroup('SIGKILL'), this.#killGraceMs)
      this.#killTimer.unref()
    }
    return this.closed.then(() => {})
  }

  #signalGroup(signal: NodeJS.Signals): void {
    if (this.pid === undefined) return
    try { process.kill(-this.pid, signal) } catch { /* the group is gone */ }
  }

  /** "exited with code 3: <stderr tail>" */
  describeExit(code: number | null, signal: NodeJS.Signals | null): string {
    if (this.spawnError) return `${this.what} could not start: ${this.spawnError.message}`
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`
    const tail = this.stderr.toString()
    return tail ? `${this.what} ${how}: ${tail}` : `${this.what} ${how}`
  }
}

/** stderr lines logged per second; a child flooding stderr must not flood our logs */
const STDERR_LINES_PER_S = 20
const STDERR_LINE_CHARS = 1_000

/** A long-lived child's stderr goes to the log line by line, each cut at 1000 characters, at most 20 a second. */
export function logStderr(context: SessionContext, child: Child): void {
  const errLines = new LineSplitter(64 * 1024)
  let budget = STDERR_LINES_PER_S
  let dropped = 0
  const refill = setInterval(() => {
    if (dropped > 0) context.emit({ kind: 'log', level: 'warn', msg: 'child stderr lines dropped', fields: { dropped } })
    budget = STDERR_LINES_PER_S
    dropped = 0
  }, 1_000)
  void child.closed.then(() => clearInterval(refill))
  child.proc.stderr.on('data', (text: string) => {
    let complete: string[]
    try { complete = errLines.push(text) } catch { complete = [errLines.rest().slice(0, STDERR_LINE_CHARS)] }
    for (const line of complete) {
      if (budget-- > 0) context.emit({ kind: 'log', level: 'warn', msg: 'child stderr', fields: { childPid: child.pid, line: line.slice(0, STDERR_LINE_CHARS) } })
      else dropped++
    }
  })
}
