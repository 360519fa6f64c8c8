/**
 * The account workers' code: stripped once from the TypeScript sources into plain JavaScript under a content-hashed
 * cache directory (src/loader/worker-code.ts). Real files, real imports, real processes racing for the same cache.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { parse } from 'es-module-lexer/js'
import { WORKER_SOURCE, WorkerCodeError, prepareWorkerCode } from '../src/loader/worker-code.ts'

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'agyc-worker-code-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function writeFiles(root: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, rel)), { recursive: true })
    writeFileSync(join(root, rel), text)
  }
}

/** every .js file under `dir`, relative */
function jsFiles(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.js')).sort()
}

/** a small graph: a type-only import, a value import, a literal dynamic import, a shared module reached twice */
const GRAPH = {
  'lib/entry.ts': [
    "import type { Shape } from './types.ts'",
    "import { area } from './geometry/area.ts'",
    "export { twice } from './util.ts'",
    'export const square: Shape = { side: 3 }',
    'export const squareArea: number = area(square)',
    "export const lazy = (): Promise<typeof import('./lazy.ts')> => import('./lazy.ts')",
    '',
  ].join('\n'),
  'lib/types.ts': 'export interface Shape { side: number }\n',
  'lib/geometry/area.ts': "import type { Shape } from '../types.ts'\nimport { twice } from '../util.ts'\nexport const area = (s: Shape): number => twice(s.side * s.side) / 2\n",
  'lib/util.ts': 'export const twice = (n: number): number => n * 2\n',
  'lib/lazy.ts': "import { join } from 'node:path'\nexport function boom(): never {\n  throw new Error(join('a', 'b'))\n}\n",
}

test('a TypeScript module graph becomes plain JavaScript that runs, with type-only modules left behind', async (t) => {
  const root = tempDir(t)
  const cacheDir = join(root, 'node_modules/.cache/agyc-workers')
  writeFiles(root, GRAPH)
  const code = prepareWorkerCode(join(root, 'lib/entry.ts'), { root, cacheDir })

  assert.deepEqual(code.files, ['lib/entry.ts', 'lib/geometry/area.ts', 'lib/lazy.ts', 'lib/util.ts'], 'types.ts is imported only for types')
  assert.deepEqual(code.bareImports, ['node:path'])
  assert.deepEqual(code.eagerImports, [], 'node:path is reached through a dynamic import only')
  assert.equal(code.cached, false)
  assert.deepEqual(jsFiles(join(cacheDir, code.hash)), ['lib/entry.js', 'lib/geometry/area.js', 'lib/lazy.js', 'lib/util.js'])

  const mod = await import(code.entry) as { squareArea: number; twice(n: number): number; lazy(): Promise<{ boom(): never }> }
  assert.equal(mod.squareArea, 9)
  assert.equal(mod.twice(4), 8)
  const lazy = await mod.lazy()
  const err = (() => { try { lazy.boom() } catch (e) { return e as Error } })()
  // positions are kept and the sourceURL names the source: a stack trace points at the .ts file, same line and column
  assert.match(err?.stack ?? '', /lib\/lazy\.ts:3:9\)/, 'the stack names the TypeScript source')
})

test('an unchanged graph is reused; a changed file gets a directory of its own', (t) => {
  const root = tempDir(t)
  const cacheDir = join(root, 'cache')
  writeFiles(root, GRAPH)
  const first = prepareWorkerCode(join(root, 'lib/entry.ts'), { root, cacheDir })
  const again = prepareWorkerCode(join(root, 'lib/entry.ts'), { root, cacheDir })
  assert.equal(again.cached, true)
  assert.equal(again.hash, first.hash)
  assert.equal(again.entry, first.entry)
  assert.deepEqual(again.files, first.files)

  writeFiles(root, { 'lib/util.ts': 'export const twice = (n: number): number => n + n\n' })
  const changed = prepareWorkerCode(join(root, 'lib/entry.ts'), { root, cacheDir })
  assert.equal(changed.cached, false)
  assert.notEqual(changed.hash, first.hash)
  assert.match(readFileSync(fileURLToPath(changed.entry.replace('entry.js', 'util.js')), 'utf8'), /n \+ n/)

  // a new import is followed: the graph grows although the files listed last time are otherwise the same
  writeFiles(root, { 'lib/extra.ts': 'export const extra = 1\n' })
  writeFiles(root, { 'lib/util.ts': "export { extra } from './extra.ts'\nexport const twice = (n: number): number => n + n\n" })
  assert.ok(prepareWorkerCode(join(root, 'lib/entry.ts'), { root, cacheDir }).files.includes('lib/extra.ts'))
})

test('processes racing to prepare the same graph all get the same complete directory', async (t) => {
  const root = tempDir(t)
  const cacheDir = join(root, 'cache')
  writeFiles(root, GRAPH)
  const module = new URL('../src/loader/worker-code.ts', import.meta.url).href
  const script = `import { prepareWorkerCode } from ${JSON.stringify(module)}
    process.stdout.write(prepareWorkerCode(${JSON.stringify(join(root, 'lib/entry.ts'))}, ${JSON.stringify({ root, cacheDir })}).entry)`
  const run = promisify(execFile)
  const results = await Promise.all(Array.from({ length: 4 }, () => run(process.execPath, ['--input-type=module', '-e', script])))
  const entries = new Set(results.map((r) => r.stdout))
  assert.equal(entries.size, 1, 'every process names the same entry')
  const [entry] = entries
  assert.ok(existsSync(fileURLToPath(entry)))
  assert.deepEqual(readdirSync(cacheDir).filter((n) => n.includes('.tmp-')), [], 'no half-written directory is left')
  assert.ok(results.every((r) => r.stderr === ''), 'nothing on stderr (the stripper\'s experimental warning is held back)')
})

test('import.meta in the worker\'s code still names the source file, at the same positions', async (t) => {
  const root = tempDir(t)
  const cacheDir = join(root, 'cache')
  writeFiles(root, { 'meta.ts': 'export const here: string = import.meta.url\nexport const bin = new URL(\'./node_modules/.bin/\', import.meta.url).pathname\n' })
  const code = prepareWorkerCode(join(root, 'meta.ts'), { root, cacheDir })
  const copied = await import(code.entry) as { here: string; bin: string }
  assert.equal(copied.here, pathToFileURL(join(root, 'meta.ts')).href)
  assert.equal(copied.bin, join(root, 'node_modules/.bin/'))
})

test('the worker\'s code may not use computed dynamic imports or relative non-.ts imports', (t) => {
  const root = tempDir(t)
  const cacheDir = join(root, 'cache')
  const cases: Record<string, string> = {
    'computed.ts': "const name = 'x'\nexport const load = () => import(`./${name}.ts`)\n",
    'plainjs.ts': "export * from './other.js'\n",
  }
  writeFiles(root, cases)
  for (const file of Object.keys(cases)) {
    assert.throws(() => prepareWorkerCode(join(root, file), { root, cacheDir }), WorkerCodeError, file)
  }
})

test('the account worker\'s code names no .ts file at run time', (t) => {
  const cacheDir = tempDir(t)
  const code = prepareWorkerCode(WORKER_SOURCE, { cacheDir })
  assert.ok(code.entry.endsWith('/workers/account-worker.js'))
  assert.ok(code.files.includes('workers/account-host.ts'))
  const dir = join(cacheDir, code.hash)
  for (const file of jsFiles(dir)) {
    const [imports] = parse(readFileSync(join(dir, file), 'utf8'))
    for (const imp of imports) {
      if (imp.type === 'import-meta') continue
      assert.ok(!imp.specifier?.endsWith('.ts'), `${file} imports ${imp.specifier}`)
    }
  }
})

test('an account worker loads no zod, and no session kind\'s machinery before its account needs it', (t) => {
  const code = prepareWorkerCode(WORKER_SOURCE, { cacheDir: tempDir(t) })
  assert.deepEqual(code.bareImports.filter((s) => s === 'zod' || s.startsWith('zod/')), [], 'zod is for the main thread')
  // session kinds are imported when an account uses one (workers/sessions/index.ts): a mock account needs neither
  for (const heavy of ['undici', 'node:child_process']) {
    assert.ok(code.bareImports.includes(heavy), `${heavy} is in the graph (a session kind uses it)`)
    assert.ok(!code.eagerImports.includes(heavy), `${heavy} is not loaded at start`)
  }
})
