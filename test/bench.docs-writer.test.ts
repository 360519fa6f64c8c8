/**
 * The bench writes its tables into docs/performance.md between its markers and leaves every other byte of the page
 * as it was: the prose around the tables is written by hand (and moved there from the README by another change).
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { BEGIN, END, withTables, writeTables } from '../bench/docs-writer.ts'

const TABLES = '### Non-streaming\n\n| arm | vs strict | vs mock baseline |\n|---|---:|---:|\n| orch-8 | 0.45 | 0.71 |\n'

test('a missing page is created with a heading, the machine, how to rerun, and the tables between the markers', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'agyc-docs-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'docs/performance.md')
  assert.match(writeTables(file, TABLES, 'Test CPU, 2 cores'), /created/)
  const page = readFileSync(file, 'utf8')
  assert.match(page, /^# Performance\n/)
  assert.match(page, /Test CPU, 2 cores/)
  assert.match(page, /npm run bench/)
  assert.ok(page.includes(`${BEGIN}\n\n${TABLES.trim()}\n\n${END}`), page)
})

test('a second run replaces only the text between the markers', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'agyc-docs-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'performance.md')
  const before = `# Speed\n\nHand-written prose.\n\n${BEGIN}\nold tables\n${END}\n\n## After\n\nMore prose <!-- bench:end --> quoted.\n`
  writeFileSync(file, before)
  assert.match(writeTables(file, TABLES, 'unused'), /replaced/)
  const page = readFileSync(file, 'utf8')
  assert.equal(page, before.replace('\nold tables\n', `\n\n${TABLES.trim()}\n\n`))
})

test('the README\'s old markers are kept and filled when the section moved as it was', () => {
  const page = 'intro\n<!-- bench:results:start (npm run bench rewrites this part) -->\n\nold\n\n<!-- bench:results:end -->\noutro\n'
  assert.equal(withTables(page, TABLES),
    `intro\n<!-- bench:results:start (npm run bench rewrites this part) -->\n\n${TABLES.trim()}\n\n<!-- bench:results:end -->\noutro\n`)
})

test('a page without markers gets them appended, its own text untouched', () => {
  const page = '# Performance\n\nProse only.\n'
  const out = withTables(page, TABLES)
  assert.ok(out.startsWith('# Performance\n\nProse only.\n'), out)
  assert.ok(out.endsWith(`${BEGIN}\n\n${TABLES.trim()}\n\n${END}\n`), out)
})
