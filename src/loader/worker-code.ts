/**
 * The account workers run plain JavaScript, stripped once by the main thread from the TypeScript sources.
 *
 * Why: node strips types with amaro (swc compiled to wasm), and it instantiates amaro in every isolate that loads a
 * `.ts` file. Measured on Node 24 (10 workers, RSS per worker): a bare worker 7.3 MB / 52 ms to start; one importing a
 * tiny `.ts` file 22.4 MB / 172 ms. With one worker per account that is the largest cost of an idle account.
 *
 * How: from the worker's entry, follow every relative import (static, re-export, literal dynamic import) that survives
 * type stripping — `import type` vanishes with the types, so a module imported only for its types is not followed —
 * strip each file with `module.stripTypeScriptTypes(…, { mode: 'strip' })`, which blanks the types and keeps every
 * other character where it was, rewrite the relative `.ts` specifiers to `.js` (same length: positions stay), and
 * write the files under `node_modules/.cache/agyc-workers/<content hash>/` in the project's own layout, so bare
 * imports ('comlink', 'undici') resolve from the project's node_modules as they do from the sources. A `sourceURL`
 * comment names the `.ts` file, so stack traces point at the sources, at the same line and column.
 *
 * The sources stay the single truth: no build step, nothing committed. The directory is written once per content hash
 * (any process that finds it complete uses it; writers race through an atomic rename), and directories unused for a
 * day are removed (a running orchestrator touches its own every few hours). An index file per entry lists the graph's files and their hash, so a start with unchanged sources
 * only reads and hashes them.
 */
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { stripTypeScriptTypes } from 'node:module'
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parse } from 'es-module-lexer/js'
import { ACCOUNT_WORKER } from '../../workers/entry.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** what `import.meta` becomes in a stripped copy: exactly as long as the token it replaces */
const META = '__agycm__()'
/** the piscina entry of an account worker, as written */
export const WORKER_SOURCE = ACCOUNT_WORKER
export const WORKER_CACHE = join(ROOT, 'node_modules/.cache/agyc-workers')

/** a cache directory nobody touched for this long is removed (a running orchestrator touches its own at start) */
const PRUNE_AFTER_MS = 24 * 3600_000

export interface WorkerCode {
  /** file URL of the stripped entry, for piscina's `filename` */
  readonly entry: string
  readonly hash: string
  /** the module graph's files, relative to the project root, as in the sources (`workers/account-worker.ts`, …) */
  readonly files: readonly string[]
  /** every non-relative specifier the graph imports at run time ('comlink', 'node:fs', …), sorted */
  readonly bareImports: readonly string[]
  /** those a worker loads at start, through static imports alone (the rest wait for a dynamic import), sorted */
  readonly eagerImports: readonly string[]
  /** false when this call wrote the directory */
  readonly cached: boolean
}

export interface WorkerCodeOptions {
  /** the project root: files are laid out relative to it, and none may lie outside it */
  root?: string
  cacheDir?: string
}

/** the worker's code breaks a rule of this module (see the messages): a bug to fix in the sources */
export class WorkerCodeError extends Error {
  constructor(message: string) {
    super(`worker code: ${message}`)
    this.name = 'WorkerCodeError'
  }
}

interface Module {
  readonly rel: string
  readonly source: string
  readonly code: string
  /** what its static imports reach: relative files (absolute paths) and bare specifiers */
  readonly staticFiles: readonly string[]
  readonly staticBare: readonly string[]
}

export function prepareWorkerCode(entryFile = WORKER_SOURCE, options: WorkerCodeOptions = {}): WorkerCode {
  const root = options.root ?? ROOT
  const cacheDir = options.cacheDir ?? WORKER_CACHE
  const entryRel = relative(root, resolve(entryFile))
  const index = join(cacheDir, `${entryRel.replaceAll(sep, '__')}.json`)

  // The fast path, taken on every start but the first after a change: the graph's edges live in the graph's own
  // files, so if none of the files listed last time changed, neither did the graph, and nothing needs stripping or
  // lexing (those cost 20–40 ms warm, 150–350 ms cold on a loaded machine; reading and hashing ~20 files, ~2 ms).
  const last = readIndex(index)
  if (last) {
    const sources = last.files.map((rel) => readSource(join(root, rel)))
    if (digest(last.files, sources) === last.hash && existsSync(join(cacheDir, last.hash))) {
      touch(join(cacheDir, last.hash))
      return { ...last, entry: entryUrl(cacheDir, last.hash, entryRel), cached: true }
    }
  }

  const modules = new Map<string, Module>()
  const bare = new Set<string>()
  const pending = [resolve(entryFile)]
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (modules.has(file)) continue
    const rel = relative(root, file)
    if (rel.startsWith('..') || isAbsolute(rel)) throw new WorkerCodeError(`${file} lies outside ${root}`)
    const source = readFileSync(file, 'utf8')
    let code = strip(source, pathToFileURL(file).href)
    const staticFiles: string[] = []
    const staticBare: string[] = []
    let usesMeta = false
    for (const imp of parse(code, file)[0]) {
      if (imp.type === 'import-meta') {
        // In the copy, import.meta would name the cache, not the source, and a path built on it would point nowhere:
        // the token becomes a call of the same length (positions, and so stack traces, stay right) to a function,
        // appended below and hoisted, that answers with the source's own location.
        if (imp.end - imp.start !== META.length) throw new WorkerCodeError(`${rel}: unexpected import.meta form`)
        code = `${code.slice(0, imp.start)}${META}${code.slice(imp.end)}`
        usesMeta = true
        continue
      }
      const specifier = imp.specifier
      if (specifier === undefined || (imp.type === 'dynamic' && imp.glob)) {
        throw new WorkerCodeError(`${rel} has a dynamic import without a literal specifier`)
      }
      if (!specifier.startsWith('./') && !specifier.startsWith('../')) {
        bare.add(specifier)
        if (imp.type !== 'dynamic') staticBare.push(specifier)
        continue
      }
      if (!specifier.endsWith('.ts')) throw new WorkerCodeError(`${rel} imports "${specifier}" (relative imports in the worker's code name .ts files)`)
      // a dynamic import's span includes its quotes; a static one's does not
      const end = imp.type === 'dynamic' ? imp.end - 1 : imp.end
      code = `${code.slice(0, end - 3)}.js${code.slice(end)}`
      const target = resolve(dirname(file), specifier)
      pending.push(target)
      if (imp.type !== 'dynamic') staticFiles.push(target)
    }
    if (usesMeta) {
      code += `\nfunction __agycm__() { return { url: ${JSON.stringify(pathToFileURL(file).href)}, filename: ${JSON.stringify(file)}, dirname: ${JSON.stringify(dirname(file))} } }\n`
    }
    modules.set(file, { rel: rel.split(sep).join('/'), source, code, staticFiles, staticBare })
  }

  const eager = new Set<string>()
  const seen = new Set<string>()
  const walk = (file: string): void => {
    if (seen.has(file)) return
    seen.add(file)
    const m = modules.get(file)
    if (!m) return
    for (const b of m.staticBare) eager.add(b)
    for (const f of m.staticFiles) walk(f)
  }
  walk(resolve(entryFile))

  const sorted = [...modules.values()].sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0))
  const files = sorted.map((m) => m.rel)
  const hash = digest(files, sorted.map((m) => m.source))
  const dir = join(cacheDir, hash)
  const cached = existsSync(dir)
  if (cached) touch(dir)
  else write(dir, sorted)
  const code: Omit<WorkerCode, 'entry' | 'cached'> = { hash, files, bareImports: [...bare].sort(), eagerImports: [...eager].sort() }
  writeAtomically(index, JSON.stringify(code))
  prune(cacheDir, hash)
  return { ...code, entry: entryUrl(cacheDir, hash, entryRel), cached }
}

function digest(files: readonly string[], sources: readonly string[]): string {
  const hash = createHash('sha256')
  hash.update(process.version) // node's stripper may change between versions
  for (let i = 0; i < files.length; i++) hash.update(`\0${files[i]}\0${sources[i]}`)
  return hash.digest('hex').slice(0, 16)
}

function readSource(file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return '' // gone since the last start: the hash will not match
  }
}

function readIndex(file: string): Omit<WorkerCode, 'entry' | 'cached'> | undefined {
  try {
    const index = JSON.parse(readFileSync(file, 'utf8')) as Omit<WorkerCode, 'entry' | 'cached'>
    return typeof index.hash === 'string' && Array.isArray(index.files) && Array.isArray(index.bareImports) && Array.isArray(index.eagerImports) ? index : undefined
  } catch {
    return undefined // none yet: the slow path writes one
  }
}

const entryUrl = (cacheDir: string, hash: string, entryRel: string): string => pathToFileURL(join(cacheDir, hash, toJs(entryRel))).href

const toJs = (rel: string): string => `${rel.slice(0, -3)}.js`

function strip(source: string, sourceUrl: string): string {
  // stripTypeScriptTypes is experimental in Node 24 and says so once per process on stderr, although node's own type
  // stripping (the same amaro) runs this very file without a word: keep that one line off the operator's terminal
  const emitWarning = process.emitWarning
  process.emitWarning = ((warning: string | Error, ...rest: never[]) => {
    const text = typeof warning === 'string' ? warning : warning.message
    if (!text.startsWith('stripTypeScriptTypes')) emitWarning.call(process, warning, ...rest)
  }) as typeof process.emitWarning
  try {
    return stripTypeScriptTypes(source, { mode: 'strip', sourceUrl })
  } finally {
    process.emitWarning = emitWarning
  }
}

/** writes the graph into a private directory, then renames it into place: readers see all of it or nothing */
function write(dir: string, modules: readonly Module[]): void {
  mkdirSync(dirname(dir), { recursive: true })
  const tmp = `${dir}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`
  try {
    mkdirSync(tmp)
    // without it, node would find no package scope (the lookup stops at node_modules) and guess the module format
    writeFileSync(join(tmp, 'package.json'), '{ "type": "module" }\n')
    for (const m of modules) {
      const out = join(tmp, toJs(m.rel))
      mkdirSync(dirname(out), { recursive: true })
      writeFileSync(out, m.code)
    }
    renameSync(tmp, dir)
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true })
    // another process wrote the same hash first: its copy is as good as ours
    if (!existsSync(dir)) throw err
  }
}

function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`
  writeFileSync(tmp, text)
  renameSync(tmp, file)
}

function touch(dir: string): void {
  const now = new Date()
  try { utimesSync(dir, now, now) } catch { /* read-only: nothing will prune it either */ }
}

function prune(cacheDir: string, keep: string): void {
  const cutoff = Date.now() - PRUNE_AFTER_MS
  for (const name of readdirSync(cacheDir)) {
    if (name === keep || name.endsWith('.json')) continue
    const path = join(cacheDir, name)
    try {
      if (statSync(path).mtimeMs < cutoff) rmSync(path, { recursive: true, force: true })
    } catch { /* another process pruned it */ }
  }
}

let prepared: string | undefined

/**
 * The worker entry for piscina, prepared on first use. When the worker's code cannot be prepared (a read-only
 * install), the workers load the TypeScript sources as before — slower to start and ~15 MB more each — and
 * `onFallback` hears why, once.
 */
export function workerEntry(entryFile: string, onFallback: (reason: string) => void): string {
  if (prepared !== undefined) return prepared
  try {
    const code = prepareWorkerCode(entryFile)
    prepared = code.entry
    // a worker restarted in a week still needs these files: keep them younger than what other processes prune
    const dir = join(WORKER_CACHE, code.hash)
    setInterval(() => touch(dir), PRUNE_AFTER_MS / 4).unref()
  } catch (err) {
    prepared = pathToFileURL(entryFile).href
    onFallback(err instanceof Error ? err.message : String(err))
  }
  return prepared
}
