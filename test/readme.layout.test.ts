/**
 * The README's layout map and request path must match the tree. The map sat at the end of a long README and went
 * stale without anyone noticing; these tests make a move that forgets the map fail, naming exactly the folders (or
 * files) that disagree.
 */
import assert from 'node:assert/strict'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'

const ROOT = new URL('..', import.meta.url).pathname
const README = readFileSync(join(ROOT, 'README.md'), 'utf8')
/** the folders whose every TypeScript-holding subfolder the map must name */
const SCANNED = ['src', 'workers']

/** The lines of the first fenced block after the heading `### <title>`, or of the section's text when `fenced` is false. */
function section(title: string, fenced: boolean): string[] {
  const lines = README.split('\n')
  const start = lines.findIndex((line) => line === `### ${title}`)
  assert.ok(start >= 0, `README.md has a "### ${title}" section`)
  const end = lines.findIndex((line, i) => i > start && /^#{1,3} /.test(line))
  const body = lines.slice(start + 1, end < 0 ? undefined : end)
  if (!fenced) return body
  const open = body.findIndex((line) => line.startsWith('```'))
  const close = body.findIndex((line, i) => i > open && line.startsWith('```'))
  assert.ok(open >= 0 && close > open, `the "### ${title}" section holds a fenced block`)
  return body.slice(open + 1, close)
}

/** Folders the map names: the first word of a line that starts at column 0 and ends with `/` (`src/api/  HTTP: …`). */
function mapFolders(): string[] {
  const folders = section('Layout map', true)
    .filter((line) => /^\S+\/(\s|$)/.test(line))
    .map((line) => line.split(/\s/, 1)[0].replace(/\/$/, ''))
  assert.ok(folders.some((f) => f.startsWith('src/')), 'the layout map names folders under src/ (is it still a fenced block of "folder/  what" lines?)')
  return folders
}

/** Every folder under `dir` (itself included) that directly holds a .ts file, as a path relative to the root. */
function foldersWithTs(dir: string, found: string[] = []): string[] {
  const entries = readdirSync(join(ROOT, dir), { withFileTypes: true })
  if (entries.some((e) => e.isFile() && e.name.endsWith('.ts'))) found.push(dir)
  for (const e of entries) if (e.isDirectory() && e.name !== 'node_modules') foldersWithTs(`${dir}/${e.name}`, found)
  return found
}

const isDir = (path: string): boolean => existsSync(join(ROOT, path)) && statSync(join(ROOT, path)).isDirectory()
const scanned = (folder: string): boolean => SCANNED.some((top) => folder === top || folder.startsWith(`${top}/`))

test('every folder under src/ and workers/ that holds .ts files is in the README layout map', () => {
  const named = new Set(mapFolders())
  const missing = SCANNED.flatMap((top) => foldersWithTs(top)).filter((folder) => !named.has(folder)).sort()
  assert.deepEqual(missing, [], `the README's layout map ("### Layout map") misses: ${missing.join(', ')}`)
})

test('every folder the README layout map names exists (under src/ and workers/, with .ts files in it)', () => {
  const withTs = SCANNED.flatMap((top) => foldersWithTs(top))
  // a folder of the map counts under src/ and workers/ when it or a folder below it holds .ts files: a folder left
  // empty by a move (git keeps none, a working tree may) is as gone as one that was never made
  const extra = mapFolders().filter((folder) => scanned(folder)
    ? !withTs.some((f) => f === folder || f.startsWith(`${folder}/`))
    : !isDir(folder)).sort()
  assert.deepEqual(extra, [], `the README's layout map ("### Layout map") names folders that do not exist: ${extra.join(', ')}`)
})

test('every file the README request path names exists', () => {
  const missing: string[] = []
  for (const line of section('One request, file by file', false)) {
    let folder = ''
    for (const [, path] of line.matchAll(/`([^`\s]+)`/g)) {
      if (!/\.ts$|\/$/.test(path) || path.includes('<')) continue   // code that is not a path, or `<kind>.ts`
      // `src/dispatch/account-handle.ts` + `worker-link.ts`: a bare name lives beside the path before it
      const full = path.includes('/') ? path : `${folder}${path}`
      folder = full.slice(0, full.lastIndexOf('/') + 1)
      if (!existsSync(join(ROOT, full))) missing.push(full)
    }
  }
  assert.deepEqual(missing, [], `the README's request path ("### One request, file by file") names files that do not exist: ${missing.join(', ')}`)
})
